import type { EventReader, HintSource, StoredEvent } from '@nodebatch/progress';
import { concatMap, filter, map, merge, of } from 'rxjs';
import type { Subscription } from 'rxjs';

/** What a follower saw, and how each event reached it. */
export interface FollowedTask {
  events: StoredEvent[];
  /** Seqs that arrived inline in a hint (as opposed to read from the store). */
  inlineSeqs: number[];
  resyncs: number;
  subscription: Subscription;
}

/**
 * A subscriber as invariant 3 describes it, for transport tests: it takes the
 * events a hint carries when they follow on, and reads the store for anything
 * else (a gap, a hint without events, a resync). It watches before its first
 * read, so nothing committed in between is missed.
 */
export function followTask(source: HintSource, store: EventReader, taskId: string): FollowedTask {
  const followed: FollowedTask = { events: [], inlineSeqs: [], resyncs: 0, subscription: undefined! };
  const lastSeq = () => followed.events.at(-1)?.seq ?? 0;

  async function readStore(): Promise<void> {
    for (;;) {
      const page = await store.readTask(taskId, { after: lastSeq() });
      if (page.length === 0) return;
      followed.events.push(...page);
    }
  }

  source.watch(taskId);
  const inputs = merge(
    of({ kind: 'read' as const }),
    source.resync$.pipe(map(() => ({ kind: 'resync' as const }))),
    source.hints$.pipe(
      filter((hint) => hint.taskId === taskId),
      map((hint) => ({ kind: 'hint' as const, hint })),
    ),
  );
  followed.subscription = inputs
    .pipe(
      concatMap(async (input) => {
        if (input.kind === 'resync') followed.resyncs++;
        if (input.kind !== 'hint') return readStore();
        const { hint } = input;
        if (hint.seq <= lastSeq()) return;
        for (const event of hint.events ?? []) {
          if (event.seq <= lastSeq()) continue;
          if (event.seq !== lastSeq() + 1) break;
          followed.events.push(event);
          followed.inlineSeqs.push(event.seq);
        }
        if (hint.seq > lastSeq()) await readStore();
      }),
    )
    .subscribe();
  followed.subscription.add(() => source.unwatch(taskId));
  return followed;
}

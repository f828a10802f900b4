import { Subject, merge, mergeMap, of, timer, map, EMPTY, type Observable } from 'rxjs';
import type { Hint, HintSource } from '../transport.js';

/** How often each fault happens, each a probability in [0, 1]. */
export interface HintFaults {
  /** The hint never arrives. */
  drop?: number;
  /** The hint arrives twice (the copy a little later). */
  duplicate?: number;
  /** The hint arrives after a few milliseconds, behind later ones. */
  delay?: number;
  /** The hint arrives without its events (as a transport sends an oversized message by reference). */
  strip?: number;
}

/**
 * A HintSource that passes another one's hints through the faults real
 * transports show: lost, duplicated, reordered, sent by reference. Like a real
 * transport's periodic catch-up, `catchUp()` emits resync$ so subscribers read
 * what the lost hints announced.
 */
export class UnreliableHintSource implements HintSource {
  readonly #inner: HintSource;
  readonly #catchUp = new Subject<void>();
  readonly hints$: Observable<Hint>;
  readonly resync$: Observable<void>;
  dropped = 0;
  duplicated = 0;
  delayed = 0;

  constructor(inner: HintSource, random: () => number, faults: HintFaults) {
    this.#inner = inner;
    const chance = (p: number | undefined) => p !== undefined && random() < p;
    this.hints$ = inner.hints$.pipe(
      mergeMap((hint): Observable<Hint> => {
        if (chance(faults.drop)) {
          this.dropped++;
          return EMPTY;
        }
        const sent: Hint = chance(faults.strip) ? { taskId: hint.taskId, seq: hint.seq } : hint;
        const once = chance(faults.delay)
          ? (this.delayed++, timer(Math.floor(random() * 5)).pipe(map(() => sent)))
          : of(sent);
        if (!chance(faults.duplicate)) return once;
        this.duplicated++;
        return merge(once, timer(Math.floor(random() * 5)).pipe(map(() => sent)));
      }),
    );
    this.resync$ = merge(inner.resync$, this.#catchUp);
  }

  watch(taskId: string): void {
    this.#inner.watch(taskId);
  }

  unwatch(taskId: string): void {
    this.#inner.unwatch(taskId);
  }

  catchUp(): void {
    this.#catchUp.next();
  }
}

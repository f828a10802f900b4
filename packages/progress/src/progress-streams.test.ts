import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { UnknownTaskError } from './errors.js';
import type { StoredEvent } from './events.js';
import { InMemoryEventStore } from './in-memory-event-store.js';
import { LocalHintSource } from './local-hint-source.js';
import { ProgressStreams } from './progress-streams.js';
import { foldTask } from './reducer.js';
import { ev } from './testing/stored-events.js';

function setup(options: { includeEvents?: boolean } = {}) {
  const store = new InMemoryEventStore();
  const hints = new LocalHintSource({ store, ...options });
  const streams = new ProgressStreams({ store, hints });
  return { store, hints, streams };
}

const seqs = (events: readonly StoredEvent[]) => events.map((event) => event.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('ProgressStreams.events$', () => {
  for (const includeEvents of [true, false]) {
    it(`delivers live events in order and completes after the terminal event (hints ${includeEvents ? 'with' : 'without'} events)`, async () => {
      const { store, streams, hints } = setup({ includeEvents });
      await store.append('t', [ev.created(['n1', 'n2'])]);
      const received: StoredEvent[] = [];
      const done = lastValueFrom(streams.events$('t').pipe(toArray()));
      streams.events$('t').subscribe((event) => received.push(event));
      await store.append('t', [ev.started(), ev.nodeStarted('n1')]);
      await store.append('t', [ev.nodeSucceeded('n1')]);
      await store.append('t', [ev.nodeSucceeded('n2'), ev.completed(2, 0)]);
      const all = await done;
      expect(seqs(all)).toEqual(range(1, 6));
      expect(seqs(received)).toEqual(range(1, 6));
      expect(hints.watchCount('t')).toBe(0);
      expect(streams.watchedTaskCount).toBe(0);
    });
  }

  it('a subscriber after a seq gets only what follows it', async () => {
    const { store, streams } = setup();
    await store.append('t', [ev.created(['n1']), ev.started(), ev.nodeStarted('n1')]);
    const done = lastValueFrom(streams.events$('t', { after: 2 }).pipe(toArray()));
    await store.append('t', [ev.nodeSucceeded('n1'), ev.completed(1, 0)]);
    expect(seqs(await done)).toEqual([3, 4, 5]);
  });

  it('completes at once for a task that ended at or before `after`', async () => {
    const { store, streams } = setup();
    await store.append('t', [ev.created(['n1']), ev.failed('boom')]);
    expect(await lastValueFrom(streams.events$('t', { after: 2 }).pipe(toArray()))).toEqual([]);
    expect(await lastValueFrom(streams.events$('t', { after: 50 }).pipe(toArray()))).toEqual([]);
    expect(seqs(await lastValueFrom(streams.events$('t', { after: 1 }).pipe(toArray())))).toEqual([2]);
  });

  it('errors with UnknownTaskError for a task that was never created', async () => {
    const { streams, hints } = setup();
    await expect(firstValueFrom(streams.events$('nope'))).rejects.toBeInstanceOf(UnknownTaskError);
    expect(hints.watchCount('nope')).toBe(0);
  });

  it('rejects a negative or fractional after', async () => {
    const { streams } = setup();
    await expect(firstValueFrom(streams.events$('t', { after: -1 }))).rejects.toBeInstanceOf(RangeError);
    await expect(firstValueFrom(streams.events$('t', { after: 1.5 }))).rejects.toBeInstanceOf(RangeError);
  });

  it('subscribers of one task share one watch, released with the last one', async () => {
    const { store, streams, hints } = setup();
    await store.append('t', [ev.created(['n1'])]);
    const first = streams.events$('t').subscribe();
    const second = streams.events$('t').subscribe();
    expect(hints.watchCount('t')).toBe(1);
    expect(streams.subscriberCount('t')).toBe(2);
    first.unsubscribe();
    expect(hints.watchCount('t')).toBe(1);
    second.unsubscribe();
    expect(hints.watchCount('t')).toBe(0);
  });
});

describe('ProgressStreams.state$', () => {
  it('emits the folded state after each event, ending with the terminal state', async () => {
    const { store, streams } = setup();
    await store.append('t', [ev.created(['n1', 'n2']), ev.started()]);
    const states = lastValueFrom(streams.state$('t').pipe(toArray()));
    await store.append('t', [ev.nodeStarted('n1'), ev.nodeSucceeded('n1')]);
    await store.append('t', [ev.nodeSkipped('n2'), ev.completed(1, 0, 1)]);
    const all = await states;
    expect(all.map((state) => state.lastSeq)).toEqual(range(1, 6));
    expect(all.map((state) => state.percent)).toEqual([0, 0, 0, 50, 100, 100]);
    expect(all.at(-1)).toEqual(foldTask('t', await store.readTask('t')));
    expect(all.at(-1)?.status).toBe('completed');
  });
});

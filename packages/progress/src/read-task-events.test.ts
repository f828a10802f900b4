import { describe, expect, it } from 'vitest';
import { UnknownTaskError } from './errors.js';
import { InMemoryEventStore } from './in-memory-event-store.js';
import { loadTaskState, readTaskEvents } from './read-task-events.js';
import { range } from './testing/subscribers.js';
import { ev } from './testing/stored-events.js';

describe('readTaskEvents', () => {
  it('reads every page even when the store returns fewer events than asked for', async () => {
    const store = new InMemoryEventStore({ pageSize: 3 });
    await store.append('t', [
      ev.created(['n1']),
      ...Array.from({ length: 10 }, (_, i) => ev.nodeProgress('n1', i, 10)),
    ]);
    const events = await readTaskEvents(store, 't', { pageSize: 10 });
    expect(events.map((e) => e.seq)).toEqual(range(1, 11));
    expect((await readTaskEvents(store, 't', { after: 9 })).map((e) => e.seq)).toEqual([10, 11]);
    expect(await readTaskEvents(store, 't', { after: 11 })).toEqual([]);
  });

  it('loadTaskState folds the whole log; unknown tasks are named', async () => {
    const store = new InMemoryEventStore({ pageSize: 2 });
    await store.append('t', [
      ev.created(['n1', 'n2']),
      ev.started(),
      ev.nodeSucceeded('n1'),
      ev.nodeFailed('n2'),
    ]);
    await store.append('t', [ev.completed(1, 1)]);
    const state = await loadTaskState(store, 't');
    expect(state).toMatchObject({
      status: 'completed',
      done: 2,
      succeeded: 1,
      failed: 1,
      percent: 100,
      lastSeq: 5,
    });
    await expect(loadTaskState(store, 'missing')).rejects.toBeInstanceOf(UnknownTaskError);
  });
});

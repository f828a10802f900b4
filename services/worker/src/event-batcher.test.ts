import { InMemoryEventStore, TaskAlreadyEndedError } from '@nodebatch/progress';
import type { NewEvent } from '@nodebatch/progress';
import { describe, expect, it } from 'vitest';
import { createEventBatcher } from './event-batcher.js';

const created: NewEvent = {
  type: 'TaskCreated',
  data: { userId: 'u', action: 'cordon', nodes: ['a', 'b', 'c'], params: {} },
};

function recordingStore() {
  const store = new InMemoryEventStore();
  const appends: number[] = [];
  const append = (taskId: string, events: readonly NewEvent[], options?: { expectedSeq?: number }) => {
    appends.push(events.length);
    return store.append(taskId, events, options);
  };
  return { store, appends, append };
}

describe('createEventBatcher', () => {
  it('appends what arrives together in one append, in push order', async () => {
    const { store, appends, append } = recordingStore();
    await store.append('t1', [created]);
    const batcher = createEventBatcher({ taskId: 't1', append });
    for (const node of ['a', 'b', 'c']) batcher.push({ type: 'NodeStarted', data: { node, attempt: 1 } });
    batcher.push({ type: 'NodeSucceeded', data: { node: 'b' } });
    await batcher.flush();
    expect(appends).toEqual([4]);
    const events = await store.readTask('t1');
    expect(events.map((event) => [event.type, 'node' in event.data ? event.data.node : null])).toEqual([
      ['TaskCreated', null],
      ['NodeStarted', 'a'],
      ['NodeStarted', 'b'],
      ['NodeStarted', 'c'],
      ['NodeSucceeded', 'b'],
    ]);
    expect(batcher.lastSeq).toBe(5);
  });

  it('appends a full batch without waiting and splits larger ones', async () => {
    const { store, appends, append } = recordingStore();
    await store.append('t2', [created]);
    const batcher = createEventBatcher({ taskId: 't2', append, maxBatchEvents: 2, flushDelayMs: 60_000 });
    batcher.push({ type: 'NodeStarted', data: { node: 'a', attempt: 1 } });
    batcher.push({ type: 'NodeStarted', data: { node: 'b', attempt: 1 } });
    batcher.push({ type: 'NodeStarted', data: { node: 'c', attempt: 1 } });
    await batcher.flush();
    expect(appends).toEqual([2, 1]);
    expect((await store.readTask('t2')).map((event) => event.seq)).toEqual([1, 2, 3, 4]);
  });

  it('cuts no batch while an append is in flight: what arrives meanwhile shares the next append', async () => {
    const { store, appends, append } = recordingStore();
    await store.append('t5', [created]);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    const slowAppend: typeof append = async (taskId, events, options) => {
      if (first) {
        first = false;
        await gate;
      }
      return append(taskId, events, options);
    };
    const batcher = createEventBatcher({ taskId: 't5', append: slowAppend, flushDelayMs: 1 });
    batcher.push({ type: 'NodeStarted', data: { node: 'a', attempt: 1 } });
    await expect.poll(() => first).toBe(false);
    // Each of these arrives after the flush delay has passed again, while the first append is held.
    for (const node of ['b', 'c', 'd']) {
      batcher.push({ type: 'NodeStarted', data: { node, attempt: 1 } });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    release();
    await batcher.flush();
    expect(appends).toEqual([1, 3]);
    expect((await store.readTask('t5')).map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('by default appends at the end of the turn what was pushed in it, together', async () => {
    const { store, appends, append } = recordingStore();
    await store.append('t6', [created]);
    const batcher = createEventBatcher({ taskId: 't6', append });
    batcher.push({ type: 'NodeStarted', data: { node: 'a', attempt: 1 } });
    batcher.push({ type: 'NodeStarted', data: { node: 'b', attempt: 1 } });
    // The batcher's end-of-turn callback was queued before this one: by now the append has begun, no timer waited.
    await new Promise((resolve) => setImmediate(resolve));
    expect(appends).toEqual([2]);
    await expect.poll(async () => (await store.readTask('t6')).length).toBe(3);
  });

  it('flushes on its own after the delay', async () => {
    const { store, append } = recordingStore();
    await store.append('t3', [created]);
    const batcher = createEventBatcher({ taskId: 't3', append, flushDelayMs: 1 });
    batcher.push({ type: 'NodeStarted', data: { node: 'a', attempt: 1 } });
    await expect.poll(async () => (await store.readTask('t3')).length).toBe(2);
  });

  it('stops at the first failed append and reports it on flush and push', async () => {
    const { store, append } = recordingStore();
    await store.append('t4', [created, { type: 'TaskFailed', data: { error: 'gone' } }]);
    const batcher = createEventBatcher({ taskId: 't4', append });
    batcher.push({ type: 'NodeStarted', data: { node: 'a', attempt: 1 } });
    await expect(batcher.flush()).rejects.toBeInstanceOf(TaskAlreadyEndedError);
    expect(batcher.failure).toBeInstanceOf(TaskAlreadyEndedError);
    expect(() => batcher.push({ type: 'NodeSucceeded', data: { node: 'a' } })).toThrow(TaskAlreadyEndedError);
    expect(await store.readTask('t4')).toHaveLength(2);
  });
});

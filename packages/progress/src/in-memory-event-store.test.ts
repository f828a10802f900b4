import { describe, expect, it } from 'vitest';
import { InvalidEventError, StaleSequenceError, TaskAlreadyEndedError, UnknownTaskError } from './errors.js';
import type { NewEvent, StoredEvent } from './events.js';
import { InMemoryEventStore } from './in-memory-event-store.js';
import { ev } from './test-support/stored-events.js';

const created = ev.created(['n1', 'n2']);

/** A promise and its resolver, to hold an append's hook open until the test lets it commit. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('InMemoryEventStore.append', () => {
  it('assigns seqs 1..100 without gap or duplicate to 100 concurrent appends', async () => {
    const store = new InMemoryEventStore();
    await store.append('t', [created]);
    const results = await Promise.all(
      Array.from({ length: 99 }, (_, i) => store.append('t', [ev.nodeProgress('n1', i, 99)])),
    );
    const seqs = results.flat().map((event) => event.seq);
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 99 }, (_, i) => i + 2));
    const stored = await store.readTask('t');
    expect(stored.map((event) => event.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const positions = stored.map((event) => event.position);
    expect(new Set(positions).size).toBe(100);
  });

  it('stores time, applies data defaults and freezes what it returns', async () => {
    const store = new InMemoryEventStore({ now: () => new Date('2026-03-01T10:00:00Z') });
    const [first, second] = await store.append('t', [created, { type: 'TaskStarted', data: { attempt: 1 } }]);
    expect(first).toMatchObject({ taskId: 't', seq: 1, position: 1, time: '2026-03-01T10:00:00.000Z' });
    const [own] = await store.append('t', [{ ...ev.nodeStarted('n1'), time: '2026-03-01T12:00:00+02:00' }]);
    expect(own?.time).toBe('2026-03-01T10:00:00.000Z');
    expect(first?.data).toMatchObject({ params: {} });
    expect(second?.seq).toBe(2);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first?.data)).toBe(true);
  });

  it('rejects a stale expectedSeq with StaleSequenceError and writes nothing', async () => {
    const store = new InMemoryEventStore();
    await store.append('t', [created], { expectedSeq: 0 });
    await store.append('t', [ev.started()], { expectedSeq: 1 });
    const error = await store
      .append('t', [ev.nodeStarted('n1')], { expectedSeq: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaleSequenceError);
    expect(error).toMatchObject({ expectedSeq: 1, actualSeq: 2, code: 'STALE_SEQUENCE' });
    expect(await store.readTask('t')).toHaveLength(2);
  });

  it('refuses anything after the terminal event, and a terminal event before the end of a batch', async () => {
    const store = new InMemoryEventStore();
    await store.append('t', [created, ev.started()]);
    await expect(store.append('t', [ev.completed(0, 0), ev.nodeStarted('n1')])).rejects.toBeInstanceOf(
      TaskAlreadyEndedError,
    );
    await expect(store.append('t', [ev.completed(0, 0), ev.failed()])).rejects.toMatchObject({
      terminalType: 'TaskCompleted',
      terminalSeq: 3,
    });
    expect(await store.readTask('t')).toHaveLength(2);
    await store.append('t', [ev.cancelled(0, 0, 0)]);
    const error = await store.append('t', [ev.failed()]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskAlreadyEndedError);
    expect(String(error)).toContain('TaskCancelled at seq 3');
    await expect(store.append('t', [ev.nodeSucceeded('n1')])).rejects.toBeInstanceOf(TaskAlreadyEndedError);
    expect(await store.readTask('t')).toHaveLength(3);
  });

  it('names bad input and writes nothing of the batch', async () => {
    const store = new InMemoryEventStore();
    await store.append('t', [created]);
    const bad = { type: 'NodeProgress', data: { node: 'n1', done: -1, total: 2 } } as unknown as NewEvent;
    const error = await store.append('t', [ev.started(), bad]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidEventError);
    expect(String(error)).toContain('event 1 (NodeProgress)');
    const unknownType = { type: 'NodeExploded', data: {} } as unknown as NewEvent;
    await expect(store.append('t', [unknownType])).rejects.toThrow(/unknown type "NodeExploded"/);
    await expect(store.append('t', [created])).rejects.toThrow(/TaskCreated must be the task's first event/);
    await expect(store.append('t', [{ ...ev.started(), time: 'yesterday' }])).rejects.toBeInstanceOf(
      InvalidEventError,
    );
    await expect(store.append('', [created])).rejects.toThrow(/task id "" must be/);
    // Bad data is named before the log's rules are looked at, as in the PostgreSQL store.
    await expect(store.append('unknown', [bad])).rejects.toBeInstanceOf(InvalidEventError);
    expect(await store.readTask('t')).toHaveLength(1);
  });

  it('a task starts with TaskCreated: other events for an unknown task are refused', async () => {
    const store = new InMemoryEventStore();
    await expect(store.append('ghost', [ev.started()])).rejects.toBeInstanceOf(UnknownTaskError);
    await expect(store.readTask('ghost')).rejects.toBeInstanceOf(UnknownTaskError);
  });

  it('runs the hook inside the append; a failing hook rolls the append back', async () => {
    const store = new InMemoryEventStore();
    const seen: StoredEvent[][] = [];
    await store.append('t', [created], { hook: async (_tx, events) => void seen.push([...events]) });
    expect(seen[0]?.map((event) => event.seq)).toEqual([1]);
    await expect(
      store.append('t', [ev.started()], {
        hook: async () => {
          throw new Error('NOTIFY failed');
        },
      }),
    ).rejects.toThrow('NOTIFY failed');
    await expect(
      store.append('t', [ev.started()], { hook: async (tx) => void (await tx.query('SELECT 1')) }),
    ).rejects.toMatchObject({ code: 'IN_MEMORY_QUERY' });
    expect(await store.readTask('t')).toHaveLength(1);
    const [next] = await store.append('t', [ev.started()]);
    expect(next?.seq).toBe(2);
    expect(await store.readAll({ afterPosition: 0 })).toHaveLength(2);
  });

  it('announces each committed append on committed$, never a rolled-back one', async () => {
    const store = new InMemoryEventStore();
    const announced: number[][] = [];
    store.committed$.subscribe((events) => announced.push(events.map((event) => event.seq)));
    await store.append('t', [created, ev.started()]);
    await store
      .append('t', [ev.nodeStarted('n1')], { hook: () => Promise.reject(new Error('no')) })
      .catch(() => {});
    await store.append('t', [ev.nodeStarted('n1')]);
    expect(announced).toEqual([[1, 2], [3]]);
  });
});

describe('InMemoryEventStore reads', () => {
  it('readTask pages by seq; latestSeqs answers for known tasks only', async () => {
    const store = new InMemoryEventStore({ pageSize: 3 });
    await store.append('a', [created, ...Array.from({ length: 9 }, () => ev.nodeProgress('n1', 1, 2))]);
    await store.append('b', [created]);
    expect((await store.readTask('a')).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await store.readTask('a', { after: 8, limit: 5 })).map((e) => e.seq)).toEqual([9, 10]);
    expect(await store.readTask('a', { after: 10 })).toEqual([]);
    // Like the PostgreSQL store, a limit above the page size gets a page.
    expect(await store.readTask('a', { limit: 100 })).toHaveLength(3);
    await expect(store.readTask('a', { after: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.readTask('a', { limit: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.readAll({ afterPosition: 1.5 })).rejects.toBeInstanceOf(RangeError);
    expect(await store.latestSeqs(['a', 'b', 'c'])).toEqual(
      new Map([
        ['a', 10],
        ['b', 1],
      ]),
    );
  });

  it('readAll never passes over an append that commits after a later position was read', async () => {
    const store = new InMemoryEventStore();
    await store.append('slow', [created]);
    await store.append('fast', [created]);
    const hold = gate();
    const inHook = gate();
    // 'slow' takes positions 3..4 and holds its hook open; 'fast' takes 5 and commits first.
    const slowAppend = store.append('slow', [ev.started(), ev.nodeStarted('n1')], {
      hook: () => {
        inHook.open();
        return hold.opened;
      },
    });
    await inHook.opened;
    await store.append('fast', [ev.started()]);
    const head = await store.headPosition();
    const firstRead = await store.readAll({ afterPosition: 0 });
    expect(firstRead.map((e) => e.position)).toEqual([1, 2]);
    expect(head).toBe(2);
    hold.open();
    await slowAppend;
    const secondRead = await store.readAll({ afterPosition: 2 });
    expect(secondRead.map((e) => [e.taskId, e.position])).toEqual([
      ['slow', 3],
      ['slow', 4],
      ['fast', 5],
    ]);
    expect(await store.headPosition()).toBe(5);
  });

  it('many writers committing in random order: a polling reader sees every position once, in order', async () => {
    const store = new InMemoryEventStore({ pageSize: 7 });
    const tasks = Array.from({ length: 20 }, (_, i) => `task-${i}`);
    for (const task of tasks) await store.append(task, [created]);
    const seen: number[] = [];
    let cursor = await store.headPosition();
    /** Reads pages until one comes back empty. */
    const poll = async () => {
      for (;;) {
        const page = await store.readAll({ afterPosition: cursor });
        if (page.length === 0) return;
        for (const event of page) seen.push(event.position);
        cursor = page.at(-1)!.position;
      }
    };
    const gates = tasks.map(() => gate());
    const appends = tasks.map((task, i) =>
      store.append(task, [ev.started(), ev.nodeStarted('n1')], { hook: () => gates[i]!.opened }),
    );
    // Commit in a scrambled order, polling in between.
    const order = tasks.map((_, i) => (i * 7) % tasks.length);
    for (const index of order) {
      gates[index]!.open();
      await appends[index];
      await poll();
    }
    // Every position the writers took, from each task's own events.
    const perTask = await Promise.all(tasks.map((task) => store.readTask(task, { after: 1 })));
    const expected = perTask
      .flat()
      .map((e) => e.position)
      .sort((a, b) => a - b);
    expect(expected).toHaveLength(40);
    expect(seen).toEqual(expected);
  });
});

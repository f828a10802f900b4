import { describe, expect, it } from 'vitest';
import type { StoredEvent } from './events.js';
import { InMemoryEventStore } from './in-memory-event-store.js';
import { eventStoreContract } from './testing/event-store-contract.js';
import { ev } from './testing/stored-events.js';

const created = ev.created(['n1', 'n2']);

/** A promise and its resolver, to hold an append's hook open until the test lets it commit. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

eventStoreContract('InMemoryEventStore', {
  create: (limits) =>
    Promise.resolve({ store: new InMemoryEventStore(limits), close: () => Promise.resolve() }),
});

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

import pg from 'pg';
import {
  InvalidEventError,
  StaleSequenceError,
  TaskAlreadyEndedError,
  UnknownTaskError,
} from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createStoreFixture,
  nodeProgress,
  taskCompleted,
  taskCreated,
  type StoreFixture,
} from './testing/store-fixture.js';

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture();
});

afterAll(async () => {
  await fixture?.close();
});

describe('append and read', () => {
  it('assigns seqs from 1 and positions that grow with seq, and reads them back', async () => {
    const { store } = fixture;
    const first = await store.append('t-basic', [taskCreated(), nodeProgress('node-a', 1)]);
    const second = await store.append('t-basic', [nodeProgress('node-a', 2), nodeProgress('node-a', 3)]);
    const all = [...first, ...second];
    expect(all.map((event) => event.seq)).toEqual([1, 2, 3, 4]);
    const positions = all.map((event) => event.position);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(new Set(positions).size).toBe(4);
    expect(first[0]).toMatchObject({
      taskId: 't-basic',
      type: 'TaskCreated',
      data: { userId: 'alice', params: {} },
    });
    expect(await store.readTask('t-basic')).toEqual(all);
    expect(await store.readTask('t-basic', { after: 2 })).toEqual(second);
    expect(await store.readTask('t-basic', { after: 1, limit: 2 })).toEqual(all.slice(1, 3));
    expect(await store.readTask('t-basic', { after: 4 })).toEqual([]);
  });

  it('keeps a batch of 100 in one append with consecutive seqs and increasing positions', async () => {
    const { store } = fixture;
    const events = [
      taskCreated('bob', ['n1']),
      ...Array.from({ length: 99 }, (_, i) => nodeProgress('n1', i + 1, 99)),
    ];
    const stored = await store.append('t-batch', events);
    expect(stored.map((event) => event.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (let i = 1; i < stored.length; i++)
      expect(stored[i]!.position).toBeGreaterThan(stored[i - 1]!.position);
    expect(await store.readTask('t-batch')).toEqual(stored);
  });

  it('keeps the given time and sets the rest from the clock', async () => {
    const { store } = fixture;
    const stored = await store.append('t-time', [
      { ...taskCreated(), time: '2026-01-02T03:04:05.678+02:00' },
      nodeProgress('node-a', 1),
    ]);
    expect(stored[0]!.time).toBe('2026-01-02T01:04:05.678Z');
    expect(Date.parse(stored[1]!.time)).not.toBeNaN();
  });

  it('reads every task in position order through readAll, and latestSeqs in one call', async () => {
    const { store } = fixture;
    const head = await store.headPosition();
    const a = await store.append('t-all-a', [taskCreated()]);
    const b = await store.append('t-all-b', [taskCreated(), nodeProgress('node-a', 1)]);
    const c = await store.append('t-all-a', [nodeProgress('node-b', 1)]);
    const read = await store.readAll({ afterPosition: head });
    expect(read).toEqual([...a, ...b, ...c]);
    expect(await store.readAll({ afterPosition: head, limit: 2 })).toEqual([...a, ...b].slice(0, 2));
    expect(await store.headPosition()).toBeGreaterThanOrEqual(c[0]!.position);
    const seqs = await store.latestSeqs(['t-all-a', 't-all-b', 't-never']);
    expect(seqs).toEqual(
      new Map([
        ['t-all-a', 2],
        ['t-all-b', 2],
      ]),
    );
  });

  it('runs the hook inside the transaction with the stored events', async () => {
    const { store, pool } = fixture;
    let seen: unknown;
    const stored = await store.append('t-hook', [taskCreated()], {
      hook: async (tx, events) => {
        seen = events;
        // The hook sees the events it was given, uncommitted, through its own transaction.
        const result = (await tx.query('SELECT count(*)::int AS n FROM events WHERE task_id = $1', [
          't-hook',
        ])) as {
          rows: { n: number }[];
        };
        const outside = await pool.query('SELECT count(*)::int AS n FROM events WHERE task_id = $1', [
          't-hook',
        ]);
        expect(result.rows[0]!.n).toBe(1);
        expect(outside.rows[0].n).toBe(0);
      },
    });
    expect(seen).toEqual(stored);
    expect(stored[0]!.position).toBeGreaterThan(0);
  });

  it("sends a hook's NOTIFY with the commit, and rolls the append back when the NOTIFY fails", async () => {
    const { store, database } = fixture;
    const listener = new pg.Client({ connectionString: database.url });
    await listener.connect();
    try {
      const received: string[] = [];
      listener.on('notification', (message) => received.push(message.payload ?? ''));
      await listener.query('LISTEN store_hook_test');
      await store.append('t-notify', [taskCreated()], {
        hook: (tx, events) => {
          tx.notify('store_hook_test', `it's seq ${events[0]!.seq}`);
          return Promise.resolve();
        },
      });
      // PostgreSQL refuses payloads of 8000 bytes and more: the append fails as a whole.
      await expect(
        store.append('t-notify', [nodeProgress('node-a', 1)], {
          hook: (tx) => {
            tx.notify('store_hook_test', 'x'.repeat(9000));
            return Promise.resolve();
          },
        }),
      ).rejects.toThrow(/payload string too long/);
      await listener.query('SELECT 1');
      expect(received).toEqual(["it's seq 1"]);
      expect((await store.readTask('t-notify')).map((event) => event.seq)).toEqual([1]);
      // The connection the failed append used is clean again.
      await expect(store.append('t-notify', [nodeProgress('node-a', 1)])).resolves.toHaveLength(1);
    } finally {
      await listener.end();
    }
  });
});

describe('rules', () => {
  it('rejects a stale expectedSeq with both numbers, and accepts the right one', async () => {
    const { store } = fixture;
    await store.append('t-expect', [taskCreated()], { expectedSeq: 0 });
    const error = await store
      .append('t-expect', [nodeProgress('node-a', 1)], { expectedSeq: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaleSequenceError);
    expect(error).toMatchObject({ expectedSeq: 0, actualSeq: 1 });
    await expect(
      store.append('t-expect', [nodeProgress('node-a', 1)], { expectedSeq: 1 }),
    ).resolves.toHaveLength(1);
    expect((await store.readTask('t-expect')).map((event) => event.seq)).toEqual([1, 2]);
  });

  it('refuses anything after the terminal event, and two terminal events in one batch', async () => {
    const { store } = fixture;
    await store.append('t-end', [taskCreated()]);
    const twice = await store.append('t-end', [taskCompleted(), taskCompleted()]).catch((e: unknown) => e);
    expect(twice).toBeInstanceOf(TaskAlreadyEndedError);
    expect(twice).toMatchObject({ terminalType: 'TaskCompleted', terminalSeq: 2 });
    const afterInBatch = await store
      .append('t-end', [taskCompleted(), nodeProgress('node-a', 1)])
      .catch((e: unknown) => e);
    expect(afterInBatch).toBeInstanceOf(TaskAlreadyEndedError);
    expect(await store.readTask('t-end')).toHaveLength(1);

    await store.append('t-end', [taskCompleted()]);
    const after = await store.append('t-end', [nodeProgress('node-a', 1)]).catch((e: unknown) => e);
    expect(after).toBeInstanceOf(TaskAlreadyEndedError);
    expect(after).toMatchObject({ terminalType: 'TaskCompleted', terminalSeq: 2 });
    await expect(
      store.append('t-end', [{ type: 'TaskFailed', data: { error: 'late' } }]),
    ).rejects.toBeInstanceOf(TaskAlreadyEndedError);
    expect(await store.readTask('t-end')).toHaveLength(2);
  });

  it('accepts TaskCreated only as the first event of a task', async () => {
    const { store } = fixture;
    await expect(store.append('t-created', [taskCreated(), taskCreated()])).rejects.toBeInstanceOf(
      InvalidEventError,
    );
    await store.append('t-created', [taskCreated()]);
    await expect(store.append('t-created', [taskCreated()])).rejects.toThrow(
      /TaskCreated must be the task's first event/,
    );
    await expect(store.append('t-no-created', [nodeProgress('node-a', 1)])).rejects.toBeInstanceOf(
      UnknownTaskError,
    );
    expect(await store.readTask('t-created')).toHaveLength(1);
    await expect(store.readTask('t-no-created')).rejects.toBeInstanceOf(UnknownTaskError);
  });
});

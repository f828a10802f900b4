import { InvalidEventError, StaleSequenceError } from '@nodebatch/progress';
import type { AppendHook } from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStoreFixture, nodeProgress, taskCreated, type StoreFixture } from './testing/store-fixture.js';

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture();
});

afterAll(async () => {
  await fixture?.close();
});

/** A hook that records the transaction it ran in and the events it was given. */
function recordingHook(into: { taskId: string; txid: string; seqs: number[] }[]): AppendHook {
  return async (tx, events) => {
    const result = (await tx.query('SELECT txid_current()::text AS txid')) as { rows: { txid: string }[] };
    into.push({ taskId: events[0]!.taskId, txid: result.rows[0]!.txid, seqs: events.map((e) => e.seq) });
  };
}

describe('appendMany', () => {
  it("writes several tasks' batches in one transaction, each as its own append would, with one hook call per task", async () => {
    const { store } = fixture;
    await store.append('many-a', [taskCreated()]);
    await store.append('many-b', [taskCreated(), nodeProgress('node-a', 1)]);
    const calls: { taskId: string; txid: string; seqs: number[] }[] = [];
    const hook = recordingHook(calls);

    const [a, b, c] = await store.appendMany([
      { taskId: 'many-b', events: [nodeProgress('node-a', 2), nodeProgress('node-b', 1)], options: { hook } },
      { taskId: 'many-a', events: [nodeProgress('node-a', 1)], options: { hook, expectedSeq: 1 } },
      // A task without a row yet: its batch creates it.
      { taskId: 'many-c', events: [taskCreated()], options: { hook } },
    ]);

    expect(a!.map((event) => [event.taskId, event.seq])).toEqual([
      ['many-b', 3],
      ['many-b', 4],
    ]);
    expect(b!.map((event) => [event.taskId, event.seq])).toEqual([['many-a', 2]]);
    expect(c!.map((event) => [event.taskId, event.seq])).toEqual([['many-c', 1]]);
    expect(calls.map((call) => call.taskId).sort()).toEqual(['many-a', 'many-b', 'many-c']);
    expect(new Set(calls.map((call) => call.txid)).size).toBe(1);
    // Positions are taken once for all, each batch's following its seqs.
    const positions = [...a!, ...b!, ...c!].map((event) => event.position);
    expect(new Set(positions).size).toBe(4);
    expect(a![0]!.position).toBeLessThan(a![1]!.position);
    expect((await store.getTask('many-b'))?.lastSeq).toBe(4);
    expect((await store.readTask('many-a')).map((event) => event.seq)).toEqual([1, 2]);
  });

  it("calls the transaction's hook once, in the transaction, with every event it wrote and none it replayed", async () => {
    const { store } = fixture;
    await store.append('whole-a', [taskCreated()]);
    await store.append('whole-b', [taskCreated()]);
    await store.appendMany([
      { taskId: 'whole-a', events: [nodeProgress('node-a', 1)], options: { idempotencyKey: 'w-1' } },
    ]);
    const calls: { taskId: string; txid: string; seqs: number[] }[] = [];
    const seen: [string, number][][] = [];
    const recording = recordingHook(calls);
    const hook: AppendHook = async (tx, events) => {
      seen.push(events.map((event) => [event.taskId, event.seq]));
      await recording(tx, events);
    };
    const perTask: { taskId: string; txid: string; seqs: number[] }[] = [];

    const [a, b, c] = await store.appendMany(
      [
        // Replayed: written by the earlier call with this key, so not announced again.
        { taskId: 'whole-a', events: [nodeProgress('node-a', 1)], options: { idempotencyKey: 'w-1' } },
        {
          taskId: 'whole-b',
          events: [nodeProgress('node-a', 1), nodeProgress('node-b', 1)],
          options: { hook: recordingHook(perTask) },
        },
        { taskId: 'whole-c', events: [taskCreated()] },
      ],
      { hook },
    );

    expect(a!.map((event) => event.seq)).toEqual([2]);
    expect(seen).toEqual([
      [
        ['whole-b', 2],
        ['whole-b', 3],
        ['whole-c', 1],
      ],
    ]);
    // The batch's own hook still runs, in the same transaction.
    expect(perTask.map((call) => call.seqs)).toEqual([[2, 3]]);
    expect(perTask[0]!.txid).toBe(calls[0]!.txid);
    expect([...b!, ...c!].map((event) => event.taskId)).toEqual(['whole-b', 'whole-b', 'whole-c']);

    // Nothing written (every batch replayed): no call.
    await store.appendMany(
      [{ taskId: 'whole-a', events: [nodeProgress('node-a', 1)], options: { idempotencyKey: 'w-1' } }],
      { hook },
    );
    expect(seen).toHaveLength(1);
  });

  it("rolls every batch back when the transaction's hook fails", async () => {
    const { store } = fixture;
    await store.append('hook-fails-a', [taskCreated()]);
    const failing: AppendHook = () => Promise.reject(new Error('no notification today'));
    await expect(
      store.appendMany(
        [
          { taskId: 'hook-fails-a', events: [nodeProgress('node-a', 1)] },
          { taskId: 'hook-fails-b', events: [taskCreated()] },
        ],
        { hook: failing },
      ),
    ).rejects.toThrow('no notification today');
    expect((await store.readTask('hook-fails-a')).map((event) => event.seq)).toEqual([1]);
    expect(await store.getTask('hook-fails-b')).toBeNull();
  });

  it('writes nothing when one batch is refused: the first refusal rejects the whole call', async () => {
    const { store } = fixture;
    await store.append('all-a', [taskCreated()]);
    await store.append('all-b', [taskCreated()]);
    await expect(
      store.appendMany([
        { taskId: 'all-a', events: [nodeProgress('node-a', 1)] },
        { taskId: 'all-b', events: [nodeProgress('node-a', 1)], options: { expectedSeq: 5 } },
      ]),
    ).rejects.toBeInstanceOf(StaleSequenceError);
    expect((await store.readTask('all-a')).map((event) => event.seq)).toEqual([1]);
    expect((await store.readTask('all-b')).map((event) => event.seq)).toEqual([1]);
    // The connection is clean again.
    await expect(
      store.appendMany([{ taskId: 'all-a', events: [nodeProgress('node-a', 1)] }]),
    ).resolves.toHaveLength(1);
  });

  it('answers a retry with the same keys with the stored batches and writes nothing twice', async () => {
    const { store } = fixture;
    await store.append('key-a', [taskCreated()]);
    await store.append('key-b', [taskCreated()]);
    const batches = [
      { taskId: 'key-a', events: [nodeProgress('node-a', 1)], options: { idempotencyKey: 'k-1' } },
      { taskId: 'key-b', events: [nodeProgress('node-b', 1)], options: { idempotencyKey: 'k-1' } },
    ];
    const first = await store.appendMany(batches);
    const again = await store.appendMany(batches);
    expect(again).toEqual(first);
    expect((await store.readTask('key-a')).map((event) => event.seq)).toEqual([1, 2]);
    expect((await store.readTask('key-b')).map((event) => event.seq)).toEqual([1, 2]);
  });

  it('refuses the same task twice in one call, before writing anything', async () => {
    const { store } = fixture;
    await store.append('twice', [taskCreated()]);
    await expect(
      store.appendMany([
        { taskId: 'twice', events: [nodeProgress('node-a', 1)] },
        { taskId: 'twice', events: [nodeProgress('node-a', 2)] },
      ]),
    ).rejects.toThrow(InvalidEventError);
    expect((await store.readTask('twice')).map((event) => event.seq)).toEqual([1]);
  });

  it('runs beside appends of the same tasks given in the other order without a deadlock', async () => {
    const { store } = fixture;
    const tasks = ['order-a', 'order-b', 'order-c'];
    for (const taskId of tasks) await store.append(taskId, [taskCreated()]);
    const reversed = [...tasks].reverse();
    const rounds = 20;
    await Promise.all(
      Array.from({ length: rounds }, (_, round) =>
        store.appendMany(
          (round % 2 === 0 ? tasks : reversed).map((taskId) => ({
            taskId,
            events: [nodeProgress('node-a', round)],
          })),
        ),
      ),
    );
    for (const taskId of tasks) {
      const seqs = (await store.readTask(taskId)).map((event) => event.seq);
      expect(seqs).toEqual(Array.from({ length: rounds + 1 }, (_, index) => index + 1));
    }
  });
});

import { createStoreFixture, nodeProgress, taskCreated } from '@nodebatch/event-store/testing';
import type { StoreFixture } from '@nodebatch/event-store/testing';
import { StaleSequenceError } from '@nodebatch/progress';
import type { NotifiedTaskBatch } from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppendGroup } from './append-group.js';

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture();
});

afterAll(async () => {
  await fixture?.close();
});

/** A group over the real store that records each transaction it made: the tasks of each. */
function recordedGroup(): { append: ReturnType<typeof createAppendGroup>; transactions: string[][] } {
  const { store } = fixture;
  const transactions: string[][] = [];
  const append = createAppendGroup({
    appendMany: async (batches: readonly NotifiedTaskBatch[]) => {
      transactions.push(batches.map((batch) => batch.taskId));
      return store.appendMany(batches);
    },
    append: async (taskId, events, options) => {
      transactions.push([taskId]);
      return store.append(taskId, events, options);
    },
  });
  return { append, transactions };
}

describe('the appends of a worker’s running tasks', () => {
  it('that arrive while a transaction is in flight share the next one, one batch per task, each task in order', async () => {
    const tasks = ['group-a', 'group-b', 'group-c', 'group-d'];
    for (const taskId of tasks) await fixture.store.append(taskId, [taskCreated()]);
    const { append, transactions } = recordedGroup();

    const first = append('group-a', [nodeProgress('node-a', 1)]);
    // The first goes alone at the end of this turn; these arrive while it is in flight.
    await new Promise((resolve) => setImmediate(resolve));
    const rest = [
      append('group-b', [nodeProgress('node-a', 1)]),
      append('group-c', [nodeProgress('node-a', 1)]),
      append('group-a', [nodeProgress('node-a', 2)]),
      append('group-d', [nodeProgress('node-a', 1)]),
      // group-b's second waits for a transaction after its first.
      append('group-b', [nodeProgress('node-a', 2)]),
    ];
    const stored = await Promise.all([first, ...rest]);

    expect(transactions).toEqual([['group-a'], ['group-b', 'group-c', 'group-a', 'group-d'], ['group-b']]);
    expect(stored.map((events) => [events[0]!.taskId, events[0]!.seq])).toEqual([
      ['group-a', 2],
      ['group-b', 2],
      ['group-c', 2],
      ['group-a', 3],
      ['group-d', 2],
      ['group-b', 3],
    ]);
    for (const taskId of tasks) {
      const progress = (await fixture.store.readTask(taskId)).filter(
        (event) => event.type === 'NodeProgress',
      );
      const done = progress.map((event) => (event.type === 'NodeProgress' ? event.data.done : 0));
      expect(done).toEqual(taskId === 'group-a' || taskId === 'group-b' ? [1, 2] : [1]);
    }
  });

  it('that share a transaction one of them makes fail get their own answers: the refused one fails, the others are written', async () => {
    for (const taskId of ['refused-a', 'refused-b', 'refused-c']) {
      await fixture.store.append(taskId, [taskCreated()]);
    }
    const { append, transactions } = recordedGroup();
    const holder = append('refused-c', [nodeProgress('node-a', 1)]);
    await new Promise((resolve) => setImmediate(resolve));
    const refused = append('refused-a', [nodeProgress('node-a', 1)], { expectedSeq: 7 });
    const accepted = append('refused-b', [nodeProgress('node-a', 1)]);

    await holder;
    await expect(refused).rejects.toBeInstanceOf(StaleSequenceError);
    await expect(accepted).resolves.toMatchObject([{ taskId: 'refused-b', seq: 2 }]);
    // The group failed as a whole and wrote nothing; each was then tried alone.
    expect(transactions).toEqual([['refused-c'], ['refused-a', 'refused-b'], ['refused-a'], ['refused-b']]);
    expect((await fixture.store.readTask('refused-a')).map((event) => event.seq)).toEqual([1]);
    expect((await fixture.store.readTask('refused-b')).map((event) => event.seq)).toEqual([1, 2]);
  });
});

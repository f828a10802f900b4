import { isDatabaseUnavailable } from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppendSessionLostError } from './errors.js';
import {
  createStoreFixture,
  gate,
  nodeProgress,
  taskCreated,
  type StoreFixture,
} from './testing/store-fixture.js';

/*
 * A process stopped in the middle of an append (SIGSTOP, a paused VM) holds
 * its task's row lock and its writer announcement. The server ends such a
 * session after appendIdleTimeoutMs, so the task's next writer and every
 * reader go on without it.
 */

const IDLE_TIMEOUT_MS = 500;
let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture({ appendIdleTimeoutMs: IDLE_TIMEOUT_MS });
});

afterAll(async () => {
  await fixture?.close();
});

describe('an append whose client stops inside the transaction', () => {
  it('is ended by the server: the next append to the task and readAll go on, and the stopped one wrote nothing', async () => {
    const { store } = fixture;
    await store.append('t-stopped', [taskCreated()]);
    const head = await store.headPosition();

    const entered = gate();
    const thawed = gate();
    // The hook runs with the lock and the announcement held, and sends nothing while it waits: a stopped client.
    const stopped = store.append('t-stopped', [nodeProgress('node-a', 1)], {
      hook: async () => {
        entered.open();
        await thawed.promise;
      },
    });
    const stoppedOutcome = stopped.then(
      () => undefined,
      (err: unknown) => err,
    );
    await entered.promise;

    // Without the timeout this waits for the row lock for as long as the client is stopped.
    const next = await store.append('t-stopped', [nodeProgress('node-b', 1)]);
    expect(next.map((event) => event.seq)).toEqual([2]);
    // And readAll passes the stopped append's floor again.
    const read = await store.readAll({ afterPosition: head });
    expect(read.map((event) => [event.taskId, event.seq])).toEqual([['t-stopped', 2]]);

    thawed.open();
    const err = await stoppedOutcome;
    expect(err).toBeInstanceOf(AppendSessionLostError);
    expect((err as AppendSessionLostError).message).toMatch(/idle-in-transaction timeout/);
    // A retry with a new connection is the answer: the retrying append treats it as an outage.
    expect(isDatabaseUnavailable(err)).toBe(true);
    const events = await store.readTask('t-stopped');
    expect(events.map((event) => [event.seq, event.type === 'NodeProgress' && event.data.node])).toEqual([
      [1, false],
      [2, 'node-b'],
    ]);
    // The pool replaced the ended connection: appends go on.
    await expect(store.append('t-stopped', [nodeProgress('node-c', 1)])).resolves.toHaveLength(1);
  }, 30_000);
});

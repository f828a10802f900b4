import { retryingAppend } from '@nodebatch/progress';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventStore, type PostgresEventStore } from './postgres-event-store.js';
import {
  closeDatabase,
  createStoreFixture,
  nodeProgress,
  taskCreated,
  type StoreFixture,
} from './testing/store-fixture.js';

/*
 * The acknowledgement of a COMMIT lost on the way back: PostgreSQL committed
 * the append, then the connection broke before the client heard so. The
 * retry, with the batch's idempotency key, must find the batch in the log
 * rather than append it a second time.
 */

let fixture: StoreFixture;
let lossyPool: pg.Pool;
let store: PostgresEventStore;
/** COMMITs whose reply is still to be lost. */
let commitsToLose = 0;

beforeAll(async () => {
  fixture = await createStoreFixture();
  lossyPool = new pg.Pool({ connectionString: fixture.database.url, max: 2 });
  lossyPool.on('error', () => undefined);
  lossyPool.on('connect', (client) => {
    client.on('error', () => undefined);
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args) => {
      const result = await query(...args);
      if (commitsToLose > 0 && typeof args[0] === 'string' && /(^|;\s*)commit$/i.test(args[0].trim())) {
        commitsToLose -= 1;
        // The server has committed; the client loses the connection before it can tell anyone.
        (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        throw new Error('Connection terminated unexpectedly');
      }
      return result;
    };
  });
  store = createEventStore({ pool: lossyPool });
});

afterAll(async () => {
  await lossyPool?.end().catch(() => undefined);
  if (fixture) await closeDatabase(fixture.database, [fixture.pool]);
});

describe('an append whose COMMIT acknowledgement was lost (PostgreSQL)', () => {
  it('is retried with its idempotency key and stored once', async () => {
    const taskId = `lost-ack-${Math.random().toString(36).slice(2)}`;
    await store.append(taskId, [taskCreated('alice', ['n1'])]);
    commitsToLose = 1;
    const append = retryingAppend(store.append.bind(store), { backoff: { minDelayMs: 10, maxDelayMs: 20 } });
    const stored = await append(taskId, [nodeProgress('n1', 1), nodeProgress('n1', 2)]);
    expect(commitsToLose).toBe(0);
    expect(stored.map((event) => event.seq)).toEqual([2, 3]);
    const log = await fixture.store.readTask(taskId);
    expect(log.map((event) => event.type)).toEqual(['TaskCreated', 'NodeProgress', 'NodeProgress']);
    expect(log.slice(1)).toEqual(stored);
  });

  it('without a key the same retry writes the batch twice (what the key prevents)', async () => {
    const taskId = `lost-ack-${Math.random().toString(36).slice(2)}`;
    await store.append(taskId, [taskCreated('alice', ['n1'])]);
    commitsToLose = 1;
    await expect(store.append(taskId, [nodeProgress('n1', 1)])).rejects.toThrow(/Connection terminated/);
    await store.append(taskId, [nodeProgress('n1', 1)]);
    expect(await fixture.store.readTask(taskId)).toHaveLength(3);
  });

  it('answers a retry that waited on the task lock while the first try committed, without storing twice', async () => {
    const taskId = `lock-wait-${Math.random().toString(36).slice(2)}`;
    const { store: direct, pool } = fixture;
    await direct.append(taskId, [taskCreated('alice', ['n1'])]);
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked = (): void => undefined;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    // The first try holds the task's row lock (its hook runs before COMMIT) ...
    const first = direct.append(taskId, [nodeProgress('n1', 1)], {
      idempotencyKey: 'batch-1',
      hook: async () => {
        locked();
        await held;
      },
    });
    await isLocked;
    // ... while the retry takes its snapshot and waits for that lock.
    const retry = direct.append(taskId, [nodeProgress('n1', 1)], { idempotencyKey: 'batch-1' });
    for (let waited = 0; ; waited += 10) {
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      if (rows[0]!.n > 0) break;
      if (waited > 5000) throw new Error('the retry never waited for the task lock');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    release();
    const [stored, replayed] = await Promise.all([first, retry]);
    expect(replayed).toEqual(stored);
    expect((await direct.readTask(taskId)).map((event) => event.seq)).toEqual([1, 2]);
  });
});

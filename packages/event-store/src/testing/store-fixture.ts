import type { NewEvent } from '@nodebatch/progress';
import { createTestDatabase, sharedDatabaseUrl, type TestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
import { vi } from 'vitest';
import {
  createEventStore,
  type EventStoreOptions,
  type PostgresEventStore,
} from '../postgres-event-store.js';
import { runMigrations } from '../run-migrations.js';

/** A fresh, migrated database with a store over it; one per test file. */
export interface StoreFixture {
  database: TestDatabase;
  pool: pg.Pool;
  store: PostgresEventStore;
  /** Ends the pool and drops the database. */
  close(): Promise<void>;
}

export async function createStoreFixture(
  options: { poolMax?: number } & Omit<EventStoreOptions, 'pool'> = {},
): Promise<StoreFixture> {
  const { poolMax, ...storeOptions } = options;
  const database = await createTestDatabase({ prefix: 'nb_es' });
  const pool = new pg.Pool({ connectionString: database.url, max: poolMax ?? 5 });
  await runMigrations(pool);
  const store = createEventStore({ pool, ...storeOptions });
  return {
    database,
    pool,
    store,
    close: () => closeDatabase(database, [pool]),
  };
}

/**
 * Ends the pools, waits until their sessions are gone, then drops the
 * database. pool.end() resolves before the server has closed the sessions,
 * and dropping with FORCE would terminate them under the ending clients,
 * which then report the termination as an unhandled error.
 */
export async function closeDatabase(database: TestDatabase, pools: readonly pg.Pool[]): Promise<void> {
  await Promise.all(pools.map((pool) => pool.end()));
  const admin = new pg.Client({ connectionString: sharedDatabaseUrl() });
  await admin.connect();
  try {
    await vi.waitFor(
      async () => {
        const { rows } = await admin.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
          [database.name],
        );
        if (rows[0]!.n !== 0) throw new Error(`${rows[0]!.n} sessions still open on ${database.name}`);
      },
      { timeout: 20_000, interval: 20 },
    );
  } finally {
    await admin.end();
  }
  await database.drop();
}

export function taskCreated(userId = 'alice', nodes: string[] = ['node-a', 'node-b']): NewEvent {
  return { type: 'TaskCreated', data: { userId, action: 'cordon', nodes, params: {} } };
}

export function nodeProgress(node: string, done: number, total = 10): NewEvent {
  return { type: 'NodeProgress', data: { node, done, total } };
}

export function taskCompleted(succeeded = 0): NewEvent {
  return { type: 'TaskCompleted', data: { succeeded, failed: 0, skipped: 0 } };
}

/** A promise with its resolve function, to hold an append's transaction open from its hook. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

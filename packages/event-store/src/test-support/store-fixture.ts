import type { NewEvent } from '@nodebatch/progress';
import { createTestDatabase, type TestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
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
  const pool = new pg.Pool({ connectionString: database.url, max: poolMax ?? 10 });
  await runMigrations(pool);
  const store = createEventStore({ pool, ...storeOptions });
  return {
    database,
    pool,
    store,
    close: async () => {
      await pool.end();
      await database.drop();
    },
  };
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

import { createTestDatabase, type TestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_STORE_MIGRATIONS } from './migrations/index.js';
import { MIGRATION_TABLE, pendingMigrations, runMigrations } from './run-migrations.js';
import { closeDatabase } from './testing/store-fixture.js';

let database: TestDatabase;
const pools: pg.Pool[] = [];

beforeAll(async () => {
  database = await createTestDatabase({ prefix: 'nb_es_mig' });
});

afterAll(async () => {
  if (database) await closeDatabase(database, pools);
});

function replicaPool(): pg.Pool {
  // One connection each: runMigrations must not need more than one.
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  pools.push(pool);
  return pool;
}

describe('runMigrations', () => {
  it('applies every migration exactly once when five replicas start at the same time', async () => {
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => runMigrations(replicaPool())));
    const applied = outcomes.map((outcome) => outcome.applied);
    const names = Object.keys(EVENT_STORE_MIGRATIONS);
    expect(applied.filter((list) => list.length > 0)).toEqual([names]);
    expect(applied.filter((list) => list.length === 0)).toHaveLength(4);

    const pool = pools[0]!;
    const { rows } = await pool.query<{ name: string }>(`SELECT name FROM ${MIGRATION_TABLE} ORDER BY name`);
    expect(rows.map((row) => row.name)).toEqual(names);
    const tables = await pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('events', 'tasks') ORDER BY 1`,
    );
    expect(tables.rows.map((row) => row.table_name)).toEqual(['events', 'tasks']);
  });

  it('does nothing on a database that is up to date', async () => {
    expect(await runMigrations(replicaPool())).toEqual({ applied: [] });
  });
});

describe('pendingMigrations', () => {
  it('lists what runMigrations would apply without changing the database', async () => {
    const fresh = await createTestDatabase({ prefix: 'nb_es_pending' });
    const pool = new pg.Pool({ connectionString: fresh.url, max: 1 });
    try {
      const names = Object.keys(EVENT_STORE_MIGRATIONS);
      expect(await pendingMigrations(pool)).toEqual(names);
      const tables = await pool.query(
        `SELECT 1 FROM information_schema.tables WHERE table_schema = 'public'`,
      );
      expect(tables.rowCount).toBe(0);

      await runMigrations(pool);
      expect(await pendingMigrations(pool)).toEqual([]);
      await pool.query(`DELETE FROM ${MIGRATION_TABLE} WHERE name = $1`, [names.at(-1)]);
      expect(await pendingMigrations(pool)).toEqual([names.at(-1)]);
    } finally {
      await closeDatabase(fresh, [pool]);
    }
  });
});

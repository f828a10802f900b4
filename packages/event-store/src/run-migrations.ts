import { Kysely, PostgresDialect, sql } from 'kysely';
import { Migrator, type MigrationResult } from 'kysely/migration';
import type pg from 'pg';
import type { Logger } from 'pino';
import { MigrationError } from './errors.js';
import { EVENT_STORE_MIGRATIONS, eventStoreMigrationProvider } from './migrations/index.js';

/** Options of {@link runMigrations}. */
export interface RunMigrationsOptions {
  /** Logs each applied migration at info. Default: silent. */
  logger?: Logger;
}

/** What {@link runMigrations} did. */
export interface MigrationsOutcome {
  /** Migrations this call applied, in order; empty when the database was up to date. */
  applied: string[];
}

/** Tables of the migrator, named for this package so other packages' migrators cannot collide. */
export const MIGRATION_TABLE = 'event_store_migrations';
const MIGRATION_LOCK_TABLE = 'event_store_migrations_lock';

/** Key of the transaction-level advisory lock that serializes concurrent runMigrations. */
const MIGRATION_LOCK_KEY = '4702631095170342913';

/**
 * Brings the event store's schema up to date; safe to call from every replica
 * at start-up at the same time. The whole run is one transaction (PostgreSQL
 * DDL is transactional) that first takes an advisory lock, so replicas that
 * start together apply the migrations exactly once, in order, and the others
 * wait and find nothing left to do. A failed migration rolls back everything
 * this call did. Needs a single connection from the pool.
 */
export async function runMigrations(
  pool: pg.Pool,
  options: RunMigrationsOptions = {},
): Promise<MigrationsOutcome> {
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  const results = await db.transaction().execute(async (trx) => {
    // Taken before the migrator even checks its own tables: their
    // CREATE TABLE IF NOT EXISTS races with a concurrent one otherwise.
    await sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint)`.execute(trx);
    const migrator = new Migrator({
      db: trx,
      provider: eventStoreMigrationProvider,
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error !== undefined) throw new MigrationError(failedMigration(results), { cause: error });
    return results ?? [];
  });
  // No db.destroy(): it would end the caller's pool, and this Kysely holds nothing else.
  const applied = results
    .filter((result) => result.status === 'Success')
    .map((result) => result.migrationName);
  for (const name of applied) options.logger?.info({ migration: name }, 'event store migration applied');
  return { applied };
}

function failedMigration(results: MigrationResult[] | undefined): string | null {
  return results?.find((result) => result.status === 'Error')?.migrationName ?? null;
}

/**
 * The migrations runMigrations would apply, in order, found by reading only:
 * `nodebatch doctor` reports them without changing the database (and works
 * with a user that may not create tables).
 */
export async function pendingMigrations(pool: Pick<pg.Pool, 'query'>): Promise<string[]> {
  const { rows: table } = await pool.query<{ exists: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AS exists',
    [MIGRATION_TABLE],
  );
  const all = Object.keys(EVENT_STORE_MIGRATIONS).sort();
  if (!table[0]?.exists) return all;
  const { rows } = await pool.query<{ name: string }>(`SELECT name FROM ${MIGRATION_TABLE}`);
  const applied = new Set(rows.map((row) => row.name));
  return all.filter((name) => !applied.has(name));
}

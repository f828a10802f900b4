import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * The PostgreSQL and Redis that scripts/ensure-services.ts made reachable for
 * the whole run. Tests never change these servers' state beyond their own
 * databases, key prefixes and channels; fault injection uses private servers.
 */
export function sharedDatabaseUrl(): string {
  return process.env.NODEBATCH_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function sharedRedisUrl(): string {
  return process.env.NODEBATCH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** A unique name for a test's database, queue, key prefix or channel. */
export function uniqueName(prefix = 'nb'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export interface TestDatabase {
  name: string;
  url: string;
  /** Terminates remaining sessions and drops the database. */
  drop(): Promise<void>;
}

/** Creates an empty database on a server (the shared one by default) for one test file. */
export async function createTestDatabase(
  options: { serverUrl?: string; prefix?: string } = {},
): Promise<TestDatabase> {
  const serverUrl = options.serverUrl ?? sharedDatabaseUrl();
  const name = uniqueName(options.prefix ?? 'nb');
  await withAdminClient(serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withAdminClient(serverUrl, (client) => dropDatabase(client, name)),
  };
}

/**
 * pg's `pool.end()` resolves before its clients' sockets are closed, so a
 * FORCE drop right after it can kill a client mid-goodbye, which surfaces as
 * an uncaught "terminating connection" error in the test process. Waiting
 * (briefly) for the database's sessions to leave first avoids that race;
 * FORCE remains for sessions a test really leaked.
 */
async function dropDatabase(client: pg.Client, name: string, waitMs = 5000): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await client.query<{ sessions: number }>(
      'SELECT count(*)::int AS sessions FROM pg_stat_activity WHERE datname = $1',
      [name],
    );
    if ((rows[0]?.sessions ?? 0) === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

async function withAdminClient<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const main = join(import.meta.dirname, '..', 'main.ts');

/** Runs `nodebatch migrate` as a deployment step would, with only the given environment. */
async function migrate(
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', main, 'migrate'],
      {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'silent', ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('nodebatch migrate', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: 'migrate_cli' });
  });
  afterAll(() => db?.drop());

  it('applies every event store migration to an empty database, then finds nothing to do', async () => {
    const first = await migrate({ DATABASE_URL: db.url });
    expect(first.code).toBe(0);
    const applied = /^applied: (.+)\n$/.exec(first.stdout)?.[1]?.split(', ');
    expect(applied?.[0]).toBe('0001-event-log');

    // The schema is really there: the tables the store writes to exist.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(
        "SELECT table_name AS name FROM information_schema.tables WHERE table_name IN ('events', 'tasks') ORDER BY 1",
      );
      expect(rows.map((row) => row.name)).toEqual(['events', 'tasks']);
      const recorded = await client.query<{ name: string }>(
        'SELECT name FROM event_store_migrations ORDER BY name',
      );
      expect(recorded.rows.map((row) => row.name)).toEqual(applied);
    } finally {
      await client.end();
    }

    expect(await migrate({ DATABASE_URL: db.url })).toMatchObject({
      code: 0,
      stdout: 'event store schema up to date\n',
    });
  }, 600_000);

  it('exits non-zero when the database cannot be reached', async () => {
    const result = await migrate({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nodebatch' });
    expect(result.code).not.toBe(0);
    expect(result.stdout).not.toMatch(/applied/);
  }, 600_000);
});

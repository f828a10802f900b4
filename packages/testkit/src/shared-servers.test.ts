import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from './shared-servers.js';

describe('createTestDatabase', () => {
  it('creates a database that can be used and dropped', async () => {
    const db = await createTestDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ name: string }>('SELECT current_database() AS name');
    await client.end();
    expect(rows[0]?.name).toBe(db.name);
    await db.drop();
    const admin = new pg.Client({
      connectionString:
        process.env.NODEBATCH_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    });
    await admin.connect();
    const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name]);
    await admin.end();
    expect(left.rowCount).toBe(0);
  });
});

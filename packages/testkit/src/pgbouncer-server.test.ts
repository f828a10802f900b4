import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPgBouncer, type PgBouncerServer } from './pgbouncer-server.js';
import { sharedDatabaseUrl } from './shared-servers.js';

describe('startPgBouncer', () => {
  let bouncer: PgBouncerServer;

  beforeAll(async () => {
    const upstream = new URL(sharedDatabaseUrl());
    bouncer = await startPgBouncer({
      upstream: { host: upstream.hostname, port: Number(upstream.port || 5432) },
    });
  });
  afterAll(() => bouncer?.destroy());

  it('forwards queries to the upstream PostgreSQL in transaction mode', async () => {
    const client = new pg.Client({ connectionString: bouncer.urlFor('postgres') });
    await client.connect();
    try {
      const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
      expect(rows[0]?.one).toBe(1);
    } finally {
      await client.end();
    }
    const admin = new pg.Client({ connectionString: bouncer.adminUrl });
    await admin.connect();
    try {
      const config = await admin.query<{ key: string; value: string }>('SHOW CONFIG');
      expect(config.rows.find((row) => row.key === 'pool_mode')?.value).toBe('transaction');
    } finally {
      await admin.end();
    }
  });
});

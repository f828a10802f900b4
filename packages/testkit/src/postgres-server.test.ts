import { existsSync, statSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortFree } from './free-port.js';
import { startPostgres, type PostgresServer } from './postgres-server.js';

async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** A connection that was open when the server went away sees an error, not a hang. */
function connectionError(client: pg.Client): Promise<Error> {
  return new Promise((resolve) => client.on('error', resolve));
}

describe('startPostgres', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('runs a private cluster on its own port with trust auth, as an unprivileged user when root', async () => {
    expect(server.port).not.toBe(5432);
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
    const [row] = await query<{ user: string; port: number }>(
      server.url,
      'SELECT current_user AS user, inet_server_port() AS port',
    );
    expect(row).toEqual({ user: 'postgres', port: server.port });
    expect(existsSync(`${server.socketDir}/.s.PGSQL.${server.port}`)).toBe(true);
    if (process.getuid?.() === 0) expect(statSync(server.dataDir).uid).not.toBe(0);
  });

  it('keeps committed data across kill -9 and start on the same port', async () => {
    await query(server.url, 'CREATE TABLE crash_check (id int primary key, note text)');
    await query(server.url, "INSERT INTO crash_check VALUES (1, 'before the crash')");
    const open = new pg.Client({ connectionString: server.url });
    await open.connect();
    const lost = connectionError(open);
    const port = server.port;

    await server.kill();
    expect(server.running).toBe(false);
    await expect(lost).resolves.toBeInstanceOf(Error);
    await expect(query(server.url, 'SELECT 1')).rejects.toThrow();

    await server.start();
    expect(server.port).toBe(port);
    expect(await query(server.url, 'SELECT note FROM crash_check')).toEqual([{ note: 'before the crash' }]);
  });

  it('keeps data across stop and restart', async () => {
    await query(server.url, "INSERT INTO crash_check VALUES (2, 'before the restart')");
    await server.stop();
    expect(server.running).toBe(false);
    expect(await isPortFree(server.port)).toBe(true);
    await server.start();
    await query(server.url, "INSERT INTO crash_check VALUES (3, 'after the start')");
    await server.restart();
    expect(server.running).toBe(true);
    const rows = await query<{ id: number }>(server.url, 'SELECT id FROM crash_check ORDER BY id');
    expect(rows.map((row) => row.id)).toEqual([1, 2, 3]);
  });

  it('destroy() kills the server and removes its directory', async () => {
    const other = await startPostgres();
    const { dataDir, port } = other;
    await other.destroy();
    expect(other.running).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
    expect(await isPortFree(port)).toBe(true);
    await expect(other.start()).rejects.toThrow(/destroyed/);
  });
});

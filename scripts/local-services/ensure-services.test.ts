import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  findPostgresBinDir,
  freePort,
  MissingServerBinaryError,
  startPostgres,
  startRedis,
  unprivilegedServerUser,
  type PostgresServer,
  type RedisServer,
} from '@nodebatch/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureServices, ServicesUnavailableError } from './ensure-services.js';
import { probePostgres, probeRedis } from './probe.js';
import { readState, stopProjectServices } from './project-services.js';

const cannotInstall = {
  name: 'none',
  available: false,
  install: () => Promise.reject(new Error('not here')),
};

const created: string[] = [];
afterAll(() => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

function projectDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nb-ensure-'));
  created.push(dir);
  // The PostgreSQL user must be able to reach .data/ when we run as root.
  chmodSync(dir, 0o755);
  return dir;
}

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('ensureServices with servers already running', () => {
  let postgres: PostgresServer;
  let redis: RedisServer;
  beforeAll(async () => {
    [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  });
  afterAll(async () => {
    await Promise.all([postgres?.destroy(), redis?.destroy()]);
  });

  it('uses the servers listening on the default ports and starts nothing', async () => {
    const dir = projectDir();
    const services = await ensureServices({
      projectDir: dir,
      env: {},
      defaultPorts: { postgres: postgres.port, redis: redis.port },
      installer: cannotInstall,
    });
    expect(services).toEqual({
      databaseUrl: `postgres://postgres@127.0.0.1:${postgres.port}/postgres`,
      redisUrl: `redis://127.0.0.1:${redis.port}`,
      postgres: 'listening',
      redis: 'listening',
    });
    expect(existsSync(join(dir, '.data'))).toBe(false);
  });

  it('uses the configured servers as given', async () => {
    const services = await ensureServices({
      projectDir: projectDir(),
      env: { NODEBATCH_TEST_DATABASE_URL: postgres.url, NODEBATCH_TEST_REDIS_URL: redis.url },
      installer: cannotInstall,
    });
    expect(services).toEqual({
      databaseUrl: postgres.url,
      redisUrl: redis.url,
      postgres: 'configured',
      redis: 'configured',
    });
  });

  it('fails, naming the variable, when a configured server is not reachable, instead of using another', async () => {
    const port = await freePort();
    const attempt = ensureServices({
      projectDir: projectDir(),
      env: {
        NODEBATCH_TEST_DATABASE_URL: `postgres://u:hunter2@127.0.0.1:${port}/db`,
        NODEBATCH_TEST_REDIS_URL: redis.url,
      },
      defaultPorts: { postgres: postgres.port, redis: redis.port },
      installer: cannotInstall,
    });
    await expect(attempt).rejects.toBeInstanceOf(ServicesUnavailableError);
    await expect(attempt).rejects.toThrow(
      `NODEBATCH_TEST_DATABASE_URL (postgres://u:***@127.0.0.1:${port}/db) is not usable`,
    );
    await expect(attempt).rejects.not.toThrow('hunter2');
  });
});

describe('ensureServices without usable servers', () => {
  const dir = projectDir();
  let occupied: Server;
  let defaults: { postgres: number; redis: number };
  beforeAll(async () => {
    // Something listens on the "default" PostgreSQL port but is not PostgreSQL
    // for us: it must be left alone and a project-owned server used instead.
    occupied = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    const address = occupied.address();
    defaults = {
      postgres: typeof address === 'object' && address ? address.port : 0,
      redis: await freePort(),
    };
  });
  afterAll(async () => {
    await stopProjectServices(dir, findPostgresBinDir(), unprivilegedServerUser());
    await new Promise((resolve) => occupied.close(resolve));
    const state = readState(dir);
    rmSync(dir, { recursive: true, force: true });
    if (state.postgres) rmSync(join(state.postgres.dataDir, '..'), { recursive: true, force: true });
  });

  it('starts project-owned servers, reuses them on the next run, and starts them again with their data', async () => {
    const log: string[] = [];
    const first = await ensureServices({
      projectDir: dir,
      env: {},
      defaultPorts: defaults,
      installer: cannotInstall,
      log: (line) => log.push(line),
    });
    expect(first).toMatchObject({
      postgres: 'project-started',
      redis: 'project-started',
      redisUrl: `redis://127.0.0.1:${defaults.redis}`,
    });
    expect(first.databaseUrl).not.toContain(`:${defaults.postgres}/`);
    expect(log.join('\n')).toContain(`a server on 127.0.0.1:${defaults.postgres} is not usable`);
    expect(readState(dir).postgres?.dataDir).toBe(join(dir, '.data', 'test-postgres', 'data'));
    await query(first.databaseUrl, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');

    const second = await ensureServices({
      projectDir: dir,
      env: {},
      defaultPorts: defaults,
      installer: cannotInstall,
    });
    expect(second).toEqual({ ...first, postgres: 'project', redis: 'project' });

    await stopProjectServices(dir, findPostgresBinDir(), unprivilegedServerUser());
    expect((await probePostgres(first.databaseUrl)).ok).toBe(false);
    expect((await probeRedis(first.redisUrl)).ok).toBe(false);
    // The server we did not start is still there.
    expect(occupied.listening).toBe(true);

    const third = await ensureServices({
      projectDir: dir,
      env: {},
      defaultPorts: defaults,
      installer: cannotInstall,
    });
    expect(third).toEqual(first);
    expect((await query(third.databaseUrl, 'SELECT v FROM kept')).rows).toEqual([{ v: 42 }]);
  });

  it('says exactly what to install when the programs are missing and cannot be installed', async () => {
    const missing = (name: string) => () => {
      throw new MissingServerBinaryError(`${name} not found`);
    };
    const attempt = ensureServices({
      projectDir: projectDir(),
      env: {},
      defaultPorts: { postgres: await freePort(), redis: await freePort() },
      installer: cannotInstall,
      findPostgresBinDir: missing('initdb'),
      findRedisServer: missing('redis-server'),
    });
    await expect(attempt).rejects.toThrow(
      /PostgreSQL and Redis not reachable on 127\.0\.0\.1 and not installed/,
    );
    await expect(attempt).rejects.toThrow('sudo apt-get install postgresql redis-server');
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@nodebatch/config';
import type { NotifierInfo } from '@nodebatch/progress';
import {
  createTestDatabase,
  sharedDatabaseUrl,
  startPgBouncer,
  uniqueName,
  type PgBouncerServer,
  type TestDatabase,
} from '@nodebatch/testkit';
import { createRuntime, type Runtime } from './create-runtime.js';

/**
 * The pool goes through a real PgBouncer in transaction mode, where LISTEN
 * cannot work: the LISTEN connection must reach PostgreSQL itself.
 */
let db: TestDatabase;
let bouncer: PgBouncerServer;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'pooler' });
  const upstream = new URL(sharedDatabaseUrl());
  bouncer = await startPgBouncer({
    upstream: { host: upstream.hostname, port: Number(upstream.port || 5432) },
    poolMode: 'transaction',
  });
  dir = mkdtempSync(join(tmpdir(), 'nb-pooler-'));
});

afterAll(async () => {
  await bouncer?.destroy();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Transactions PgBouncer passed on to our database: proof that the pool went through it. */
async function pooledTransactions(): Promise<number> {
  const admin = new pg.Client({ connectionString: bouncer.adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ database: string; total_xact_count: string }>('SHOW STATS');
    return Number(rows.find((row) => row.database === db.name)?.total_xact_count ?? 0);
  } finally {
    await admin.end();
  }
}

async function appendThree(runtime: Runtime): Promise<number[]> {
  const taskId = uniqueName('task');
  await runtime.notifier.append(taskId, [
    { type: 'TaskCreated', data: { userId: 'u', action: 'cordon', nodes: ['n1'], params: {} } },
  ]);
  const events = firstValueFrom(runtime.streams.events$(taskId).pipe(take(3), toArray(), timeout(60_000)));
  await runtime.notifier.append(taskId, [{ type: 'TaskStarted', data: { attempt: 1 } }]);
  await runtime.notifier.append(taskId, [{ type: 'NodeStarted', data: { node: 'n1', attempt: 1 } }]);
  return (await events).map((event) => event.seq);
}

describe('behind PgBouncer in transaction mode', () => {
  it("with DB_LISTEN_URL the seed's config file drives LISTEN/NOTIFY: every event arrives through LISTEN, the pool goes through the pooler", async () => {
    // The replaced system's config file as teams have it, pointing at the pooler.
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      [
        'database:',
        '  host: "127.0.0.1"',
        `  port: ${bouncer.port}`,
        `  database: "${db.name}"`,
        '  username: "postgres"',
        '  ssl_mode: "disable"',
        'progress:',
        '  enable_database: true',
        '  notify_type: "postgres"',
        '  poll_interval: 10000',
        '',
      ].join('\n'),
    );
    const { config, sources } = loadConfig({ env: { CONFIG_FILE: file, DB_LISTEN_URL: db.url }, cwd: dir });
    expect(sources['progress.notifyType']).toBe(`file:${file}#progress.notify_type`);
    expect(config.progress.pollIntervalMs).toBe(10_000);
    const before = await pooledTransactions();
    const runtime = await createRuntime({
      config,
      logger: pino({ level: 'silent' }),
      postgresChannel: uniqueName('pool'),
    });
    const infos: NotifierInfo[] = [];
    const watching = runtime.notifier.info$.subscribe((info) => infos.push(info));
    try {
      expect(runtime.notifier.info).toMatchObject({
        configured: 'postgres',
        active: 'postgres',
        fallback: false,
        healthy: true,
      });
      // Polling every 10 s could not deliver these within the test's patience; LISTEN does.
      expect(await appendThree(runtime)).toEqual([1, 2, 3]);
      expect(await runtime.notifier.verify(10_000)).toMatchObject({
        ok: true,
        transport: 'postgres',
        fallback: false,
      });
      expect(infos.every((info) => info.active === 'postgres' && !info.fallback)).toBe(true);
      expect(await pooledTransactions()).toBeGreaterThan(before);
    } finally {
      watching.unsubscribe();
      await runtime.close();
    }
  });

  it('without it the notifier sees notifications never arrive, falls back to polling and names the pooler and the setting', async () => {
    const lines: { msg: string; checklist?: string[] }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const { config } = loadConfig({
      env: {
        DATABASE_URL: bouncer.urlFor(db.name),
        PROGRESS_NOTIFY_TYPE: 'postgres',
        PROGRESS_POLL_INTERVAL: '200',
      },
      cwd: dir,
    });
    const runtime = await createRuntime({ config, logger, postgresChannel: uniqueName('pool') });
    try {
      expect(runtime.notifier.info).toMatchObject({
        configured: 'postgres',
        active: 'polling',
        fallback: true,
        healthy: true,
      });
      expect(runtime.notifier.info.reason).toMatch(/never reached the LISTEN connection at 127\.0\.0\.1:\d+/);
      expect(runtime.notifier.info.reason).toContain('pooler in transaction mode (PgBouncer)');
      expect(runtime.notifier.info.reason).toContain('DB_LISTEN_URL');
      const failure = lines.filter((line) => line.msg.startsWith('postgres notifier cannot start'));
      expect(failure).toHaveLength(1);
      expect(failure[0]?.checklist?.[0]).toContain('DB_LISTEN_URL');
      // Progress still flows, from the log.
      expect(await appendThree(runtime)).toEqual([1, 2, 3]);
    } finally {
      await runtime.close();
    }
  });
});

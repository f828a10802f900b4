import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseConfig } from '@nodebatch/config';
import type { NotifierInfo } from '@nodebatch/progress';
import { createRuntime } from '@nodebatch/runtime';
import { createTestDatabase, freePort, startPostgres, uniqueName } from '@nodebatch/testkit';
import type { PostgresServer, TestDatabase } from '@nodebatch/testkit';
import {
  captureLogger,
  collectSeqs,
  configFor,
  created,
  progressEvent,
  publish,
  range,
  throughRuntime,
  withClient,
} from './support.js';

/**
 * The notifier's start-up diagnostics and its fallback and recovery
 * (invariants 6 and 7, docs/invariants.md), on a private PostgreSQL whose pg_hba.conf demands a
 * password from one role, so that a wrong password can really be refused.
 */

const PASSWORD_ROLE = 'nb_pw_user';
const RIGHT_PASSWORD = `right-${randomBytes(6).toString('hex')}`;

let server: PostgresServer;
let hbaDir: string;
let db: TestDatabase;
let closedPort: number;
/** Accepts connections and never answers, as a host behind a dropping firewall looks to a client. */
let silent: Server;
let silentPort: number;
const silentSockets = new Set<Socket>();

beforeAll(async () => {
  hbaDir = mkdtempSync(join(tmpdir(), 'nodebatch-hba-'));
  // The server may run as an unprivileged user: the file must be readable by it.
  chmodSync(hbaDir, 0o755);
  const hbaFile = join(hbaDir, 'pg_hba.conf');
  writeFileSync(
    hbaFile,
    [
      'local all all trust',
      `host all ${PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256`,
      'host all all 127.0.0.1/32 trust',
      '',
    ].join('\n'),
  );
  chmodSync(hbaFile, 0o644);
  server = await startPostgres({ settings: { hba_file: hbaFile } });
  await withClient(server.url, (client) =>
    client.query(`CREATE ROLE ${PASSWORD_ROLE} LOGIN PASSWORD '${RIGHT_PASSWORD}'`),
  );
  db = await createTestDatabase({ serverUrl: server.url, prefix: 'fallback' });
  closedPort = await freePort();
  silent = createServer((socket) => void silentSockets.add(socket));
  silentPort = await new Promise<number>((resolve) =>
    silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)),
  );
});

afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await db?.drop();
  await server?.destroy();
  if (hbaDir) rmSync(hbaDir, { recursive: true, force: true });
});

interface FailureCase {
  name: string;
  listener: (database: DatabaseConfig, secret: string) => Partial<DatabaseConfig>;
  env?: Record<string, string>;
  connectTimeoutMs?: number;
  host: () => string;
  code: RegExp;
  summary: RegExp;
  checklist: RegExp;
}

const failures: FailureCase[] = [
  {
    name: 'wrong host',
    listener: (_db, secret) => ({ host: '127.0.0.2', password: secret }),
    host: () => '127.0.0.2',
    code: /^ECONNREFUSED$/,
    summary: /refused/,
    checklist: /Is PostgreSQL running on 127\.0\.0\.2/,
  },
  {
    name: 'wrong host: DB_HOST not set inside Kubernetes',
    listener: (_db, secret) => ({ host: 'localhost', port: closedPort, password: secret }),
    env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' },
    host: () => 'localhost',
    code: /^ECONNREFUSED$/,
    summary: /refused/,
    checklist: /DB_HOST is probably not set/,
  },
  {
    name: 'wrong port',
    listener: (_db, secret) => ({ port: closedPort, password: secret }),
    host: () => `127.0.0.1:${closedPort}`,
    code: /^ECONNREFUSED$/,
    summary: /refused/,
    checklist: /DB_PORT/,
  },
  {
    name: 'wrong password',
    listener: (_db, secret) => ({ username: PASSWORD_ROLE, password: secret }),
    host: () => '127.0.0.1',
    code: /^28P01$/,
    summary: new RegExp(`rejected the credentials of user "${PASSWORD_ROLE}"`),
    checklist: /Is the password right\? \(DB_PASSWORD/,
  },
  {
    name: 'missing database',
    listener: (_db, secret) => ({ database: 'nb_no_such_database', password: secret }),
    host: () => '127.0.0.1',
    code: /^3D000$/,
    summary: /"nb_no_such_database" does not exist/,
    checklist: /createdb/,
  },
  {
    name: 'unresolvable name',
    listener: (_db, secret) => ({ host: 'nodebatch-postgres.invalid', password: secret }),
    host: () => 'nodebatch-postgres.invalid',
    code: /^(ENOTFOUND|EAI_AGAIN)$/,
    summary: /does not resolve/,
    checklist: /namespace/,
  },
  {
    name: 'connect timeout',
    listener: (_db, secret) => ({ host: '127.0.0.1', port: silentPort, password: secret }),
    connectTimeoutMs: 1_000,
    host: () => `127.0.0.1:${silentPort}`,
    code: /^TIMEOUT$/,
    summary: /timed out/,
    checklist: /NetworkPolicy/,
  },
];

describe('notifier start-up with an unusable LISTEN target', () => {
  it.each(failures)('$name: falls back to polling with the matching diagnosis', async (failure) => {
    const secret = `nb-secret-${randomBytes(8).toString('hex')}`;
    const { logger, lines, text } = captureLogger('info');
    const config = configFor(db.url, { PROGRESS_NOTIFY_TYPE: 'postgres', PROGRESS_POLL_INTERVAL: '100' });
    const runtime = await createRuntime({
      config,
      logger,
      env: failure.env ?? {},
      listenerDatabase: { ...config.database, ...failure.listener(config.database, secret) },
      ...(failure.connectTimeoutMs ? { connectTimeoutMs: failure.connectTimeoutMs } : {}),
    });
    try {
      const info = runtime.notifier.info;
      expect(info).toMatchObject({
        configured: 'postgres',
        active: 'polling',
        healthy: true,
        fallback: true,
      });
      expect(info.reason).toMatch(failure.summary);

      const errors = lines.filter((line) => line.level === 50);
      expect(errors).toHaveLength(1);
      const error = errors[0]!;
      expect(String(error.msg)).toMatch(/^postgres notifier cannot start: /);
      expect(String(error.msg)).toMatch(failure.summary);
      expect(String(error.code)).toMatch(failure.code);
      expect(error.target).toMatchObject({ passwordSet: true, sslMode: config.database.sslMode });
      expect((error.checklist as string[]).join('\n')).toMatch(failure.checklist);

      const fallbacks = lines.filter((line) =>
        String(line.msg).startsWith('using polling as fallback for postgres: '),
      );
      expect(fallbacks).toHaveLength(1);
      expect(fallbacks[0]?.level).toBe(40);
      // Nothing else from the notifier: one line per change, no "verified" for what is not delivering.
      expect(lines.filter((line) => line.component === 'notifier')).toEqual([error, fallbacks[0]]);

      expect(text()).toContain(failure.host());
      expect(text()).not.toContain(secret);

      // Honest verify: it probes polling, the transport that delivers, and says it is a fallback.
      expect(await runtime.notifier.verify(5_000)).toMatchObject({
        ok: true,
        transport: 'polling',
        fallback: true,
      });

      // And progress still flows, through polling.
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [created()]);
      const seqs = collectSeqs(runtime.streams, taskId, 30_000);
      await runtime.notifier.append(taskId, [progressEvent(1, 2)]);
      await runtime.notifier.append(taskId, [
        { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } },
      ]);
      expect(await seqs).toEqual([1, 2, 3]);
    } finally {
      await runtime.close();
    }
  });
});

describe('notifier at run time', () => {
  it('falls back to polling when LISTEN dies, returns after a round trip, and loses nothing across both switches', async () => {
    const role = uniqueName('nb_listen');
    await withClient(server.url, (client) => client.query(`CREATE ROLE ${role} LOGIN`));
    const { logger, lines } = captureLogger('info');
    const config = configFor(db.url, {
      PROGRESS_NOTIFY_TYPE: 'postgres',
      PROGRESS_POLL_INTERVAL: '100',
      PROGRESS_FALLBACK_AFTER: '500',
    });
    const runtime = await createRuntime({
      config,
      logger,
      listenerDatabase: { ...config.database, username: role },
      listenerReconnect: { minDelayMs: 50, maxDelayMs: 300 },
      notifierRetry: { minDelayMs: 100, maxDelayMs: 500 },
    });
    const infos: NotifierInfo[] = [];
    const subscription = runtime.notifier.info$.subscribe((info) => infos.push(info));
    const infoWhere = (predicate: (info: NotifierInfo) => boolean) =>
      firstValueFrom(runtime.notifier.info$.pipe(filter(predicate), timeout(30_000)));
    try {
      expect(runtime.notifier.info).toMatchObject({ active: 'postgres', healthy: true, fallback: false });
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
      const received = collectSeqs(runtime.streams, taskId, 90_000);

      const total = 3_000;
      const steps: Record<number, () => Promise<unknown>> = {
        // The listener's role may no longer log in, and its session is ended: LISTEN is gone for good.
        500: () =>
          withClient(server.url, async (client) => {
            await client.query(`ALTER ROLE ${role} NOLOGIN`);
            await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
              role,
            ]);
          }),
        1_000: () => infoWhere((info) => info.fallback),
        1_500: () => withClient(server.url, (client) => client.query(`ALTER ROLE ${role} LOGIN`)),
        2_000: () => infoWhere((info) => !info.fallback && info.active === 'postgres' && info.healthy),
      };
      const thresholds = Object.keys(steps).map(Number);
      await publish({
        ...throughRuntime(runtime),
        taskId,
        total,
        async onAppended(seq) {
          while (thresholds.length > 0 && seq >= thresholds[0]!) await steps[thresholds.shift()!]!();
        },
      });
      expect(await received).toEqual(range(1, total));

      const fallback = infos.find((info) => info.fallback);
      expect(fallback).toMatchObject({
        configured: 'postgres',
        active: 'polling',
        healthy: true,
        fallback: true,
      });
      expect(fallback?.reason).toMatch(/listener/);
      const recovered = infos.slice(infos.indexOf(fallback!)).find((info) => !info.fallback);
      expect(recovered).toMatchObject({ active: 'postgres', healthy: true, fallback: false });
      expect(Date.parse(recovered!.since)).toBeGreaterThanOrEqual(Date.parse(fallback!.since));

      // One line per change of state, at the right level.
      const notifierLines = lines
        .filter((line) => line.component === 'notifier')
        .map((line) => [line.level, String(line.msg).replace(/: .*$/, ': …')]);
      expect(notifierLines).toEqual([
        [30, 'postgres notifier verified - multi-replica progress updates ready'],
        [40, 'postgres notifier unhealthy: …'],
        [40, 'using polling as fallback for postgres: …'],
        [30, 'postgres notifier verified - multi-replica progress updates ready'],
      ]);
    } finally {
      subscription.unsubscribe();
      await runtime.close();
      await withClient(server.url, (client) => client.query(`DROP ROLE IF EXISTS ${role}`));
    }
  });

  it('with the database down as well, says nothing delivers, then falls back once the database is back', async () => {
    const role = uniqueName('nb_listen');
    await withClient(server.url, (client) => client.query(`CREATE ROLE ${role} LOGIN`));
    const { logger, lines } = captureLogger('info');
    const config = configFor(db.url, {
      PROGRESS_NOTIFY_TYPE: 'postgres',
      PROGRESS_POLL_INTERVAL: '100',
      PROGRESS_FALLBACK_AFTER: '300',
    });
    const runtime = await createRuntime({
      config,
      logger,
      listenerDatabase: { ...config.database, username: role },
      listenerReconnect: { minDelayMs: 50, maxDelayMs: 300 },
      notifierRetry: { minDelayMs: 100, maxDelayMs: 500 },
    });
    const infoWhere = (predicate: (info: NotifierInfo) => boolean) =>
      firstValueFrom(runtime.notifier.info$.pipe(filter(predicate), timeout(60_000)));
    try {
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [created()]);
      const seqs = collectSeqs(runtime.streams, taskId, 90_000);
      // The listener will not get back in after the restart; the event store will.
      await withClient(server.url, (client) => client.query(`ALTER ROLE ${role} NOLOGIN`));
      const nothingDelivers = infoWhere((info) => /polling cannot start either/.test(info.reason ?? ''));
      await server.stop();
      expect(await nothingDelivers).toMatchObject({ active: 'postgres', healthy: false, fallback: false });
      const fallback = infoWhere((info) => info.fallback && info.healthy);
      await server.start();
      expect(await fallback).toMatchObject({ active: 'polling', healthy: true, fallback: true });
      expect(await runtime.notifier.verify(5_000)).toMatchObject({ ok: true, transport: 'polling' });
      await runtime.notifier.append(taskId, [progressEvent(1, 2)]);
      await withClient(server.url, (client) => client.query(`ALTER ROLE ${role} LOGIN`));
      await infoWhere((info) => info.active === 'postgres' && info.healthy && !info.fallback);
      await runtime.notifier.append(taskId, [
        { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } },
      ]);
      expect(await seqs).toEqual([1, 2, 3]);
      const errors = lines.filter((line) => line.level === 50 && line.component === 'notifier');
      expect(errors.map((line) => String(line.msg).replace(/ \(.*$/, ''))).toEqual([
        'no transport delivers progress: postgres failed',
      ]);
    } finally {
      await runtime.close();
      await withClient(server.url, (client) => client.query(`DROP ROLE IF EXISTS ${role}`));
    }
  });

  it('configured polling says so: verified, not a fallback', async () => {
    const { logger, lines } = captureLogger('info');
    const runtime = await createRuntime({
      config: configFor(db.url, { PROGRESS_NOTIFY_TYPE: 'polling', PROGRESS_POLL_INTERVAL: '100' }),
      logger,
    });
    try {
      expect(runtime.notifier.info).toMatchObject({
        configured: 'polling',
        active: 'polling',
        healthy: true,
        fallback: false,
        reason: 'polling configured, verified',
      });
      expect(lines.filter((line) => line.msg === 'polling configured, verified')).toHaveLength(1);
      expect(await runtime.notifier.verify()).toMatchObject({
        ok: true,
        transport: 'polling',
        fallback: false,
      });
      const infos = firstValueFrom(runtime.notifier.info$.pipe(take(1), toArray()));
      expect((await infos)[0]?.fallback).toBe(false);
    } finally {
      await runtime.close();
    }
  });
});

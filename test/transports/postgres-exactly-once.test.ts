import { setTimeout as delay } from 'node:timers/promises';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NotifierInfo } from '@nodebatch/progress';
import { createRuntime } from '@nodebatch/runtime';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase, startPostgres, uniqueName } from '@nodebatch/testkit';
import type { PostgresServer } from '@nodebatch/testkit';
import {
  captureLogger,
  collectSeqs,
  configFor,
  created,
  onConfiguredTransport,
  publish,
  range,
  recordHints,
  throughRuntime,
  spawnPublisher,
  terminateListeners,
  withClient,
} from './support.js';
import type { EndedListener, ObservedHint } from './support.js';

/**
 * Invariant 3 (docs/invariants.md) under fire: a subscriber gets every event of its task exactly
 * once, in order, whatever happens to the LISTEN connection and the server.
 * All on a private PostgreSQL: these tests kill connections and stop the server.
 */

const TOTAL = 10_000;
const STREAM_TIMEOUT_MS = 150_000;
/** The outage the issue asks for: long enough for the notifier to give up on LISTEN and fall back. */
const OUTAGE_MS = 10_000;

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.destroy();
});

/**
 * A runtime whose LISTEN connection logs in as a role of its own, so that
 * pg_stat_activity tells its listener from any other (the publisher's).
 */
async function startRuntime(
  databaseUrl: string,
  listenerRole: string,
  logger = captureLogger('info').logger,
): Promise<Runtime> {
  const config = configFor(databaseUrl, {
    PROGRESS_NOTIFY_TYPE: 'postgres',
    PROGRESS_FALLBACK_AFTER: '2000',
  });
  return createRuntime({
    config,
    logger,
    listenerDatabase: { ...config.database, username: listenerRole },
    listenerReconnect: { minDelayMs: 50, maxDelayMs: 1_000 },
    notifierRetry: { minDelayMs: 200, maxDelayMs: 2_000 },
  });
}

async function createListenerRole(): Promise<string> {
  const role = uniqueName('nb_sub_listener');
  await withClient(server.url, (client) => client.query(`CREATE ROLE ${role} LOGIN`));
  return role;
}

async function dropRole(role: string): Promise<void> {
  await withClient(server.url, (client) => client.query(`DROP ROLE IF EXISTS ${role}`));
}

function healthyOnPostgres(runtime: Runtime): Promise<NotifierInfo> {
  return firstValueFrom(
    runtime.notifier.info$.pipe(
      filter((info) => info.active === 'postgres' && info.healthy),
      timeout(60_000),
    ),
  );
}

function publishThrough(
  runtime: Runtime,
  taskId: string,
  onAppended: (seq: number) => void | Promise<void>,
): Promise<void> {
  return publish({
    ...throughRuntime(runtime),
    taskId,
    total: TOTAL,
    onAppended,
  });
}

/** The hints after `seq` came through LISTEN/NOTIFY: postgres was active, and some carried their events. */
function expectPostgresDeliveredAfter(hints: readonly ObservedHint[], seq: number): void {
  const after = hints.filter((hint) => hint.seq > seq);
  expect(after.length).toBeGreaterThan(0);
  expect(after.filter((hint) => hint.active !== 'postgres' || hint.fallback)).toEqual([]);
  expect(after.filter((hint) => hint.pushed).length).toBeGreaterThan(0);
}

describe('exactly once, in order, through the postgres transport', () => {
  it('while the listener backend is killed with pg_terminate_backend three times', async () => {
    const db = await createTestDatabase({ serverUrl: server.url, prefix: 'xo_kill' });
    const role = await createListenerRole();
    const { logger, lines } = captureLogger('info');
    const runtime = await startRuntime(db.url, role, logger);
    try {
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
      const received = collectSeqs(runtime.streams, taskId, STREAM_TIMEOUT_MS);
      const observed = recordHints(runtime, taskId);
      const infos: NotifierInfo[] = [];
      const subscription = runtime.notifier.info$.subscribe((info) => infos.push(info));

      const thresholds = [2_000, 4_500, 7_000];
      const kills: { seq: number; ended: EndedListener[] }[] = [];
      await publishThrough(runtime, taskId, async (seq) => {
        if (thresholds.length === 0 || seq < thresholds[0]!) return;
        thresholds.shift();
        // The publisher waits for the kill, so that it lands mid-stream; and only a listener
        // back from the previous kill is killed, so that each kill counts.
        await healthyOnPostgres(runtime);
        kills.push({ seq, ended: await terminateListeners(server.url, db.name) });
      });

      expect(await received).toEqual(range(1, TOTAL));
      // Each kill ended this runtime's own listener, with events still to be published after it.
      expect(kills.map((kill) => kill.ended.map((ended) => ended.usename))).toEqual([[role], [role], [role]]);
      expect(kills.every((kill) => kill.seq < TOTAL)).toBe(true);
      const lost = lines.filter((line) => String(line.msg).startsWith('listener connection lost'));
      const back = lines.filter((line) => line.msg === 'listener reconnected');
      expect(lost).toHaveLength(3);
      expect(back).toHaveLength(3);
      // Each reconnect came well within the fallback delay: polling never took over.
      expect(infos.some((info) => info.fallback)).toBe(false);
      expectPostgresDeliveredAfter(observed.hints, kills.at(-1)!.seq);
      await healthyOnPostgres(runtime);
      observed.stop();
      subscription.unsubscribe();
    } finally {
      await runtime.close();
      await db.drop();
      await dropRole(role);
    }
  });

  it('while the PostgreSQL server is stopped for 10 s and started again', async () => {
    const db = await createTestDatabase({ serverUrl: server.url, prefix: 'xo_stop' });
    const role = await createListenerRole();
    const runtime = await startRuntime(db.url, role);
    try {
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
      const received = collectSeqs(runtime.streams, taskId, STREAM_TIMEOUT_MS);
      const observed = recordHints(runtime, taskId);
      const infos: NotifierInfo[] = [];
      const subscription = runtime.notifier.info$.subscribe((info) => infos.push(info));

      let stoppedAt = 0;
      let recoveredAt = 0;
      let outage: Promise<void> | null = null;
      await publishThrough(runtime, taskId, async (seq) => {
        if (!outage) {
          if (seq < 3_000) return;
          // The publisher waits until the server is down: the outage begins mid-stream,
          // and the publisher keeps trying to append through it.
          await server.stop();
          stoppedAt = seq;
          outage = delay(OUTAGE_MS).then(() => server.start());
          return;
        }
        if (recoveredAt > 0) return;
        // The first append after the restart: the rest is published once LISTEN is back,
        // so that it must be LISTEN, not polling, that delivers it.
        await outage;
        await onConfiguredTransport(runtime);
        recoveredAt = seq;
      });

      expect(await received).toEqual(range(1, TOTAL));
      expect(stoppedAt).toBeGreaterThan(0);
      expect(recoveredAt).toBeGreaterThan(stoppedAt);
      expect(recoveredAt).toBeLessThan(TOTAL);
      subscription.unsubscribe();
      observed.stop();
      // The notifier saw the listener die, and LISTEN delivered what came after the restart.
      expect(infos.some((info) => !info.healthy)).toBe(true);
      expectPostgresDeliveredAfter(observed.hints, recoveredAt);
    } finally {
      await runtime.close();
      await db.drop();
      await dropRole(role);
    }
  });

  it('with the publisher in another process, through kills and a 10 s stop', async () => {
    const db = await createTestDatabase({ serverUrl: server.url, prefix: 'xo_two' });
    const role = await createListenerRole();
    const runtime = await startRuntime(db.url, role);
    const taskId = uniqueName('task');
    await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
    const received = collectSeqs(runtime.streams, taskId, STREAM_TIMEOUT_MS);
    const publisher = spawnPublisher({
      DATABASE_URL: db.url,
      TASK_ID: taskId,
      TOTAL: String(TOTAL),
      PAUSE_AT: '2000,4000,6000',
    });
    try {
      // Each fault lands while the publisher is held mid-stream; it goes on after the fault.
      const faults: number[] = [];
      for (let kill = 0; kill < 2; kill++) {
        faults.push(await publisher.paused());
        await healthyOnPostgres(runtime);
        // Both processes' listeners; the subscriber's is the one that matters, and must be among them.
        const ended = await terminateListeners(server.url, db.name);
        expect(ended.map((listener) => listener.usename)).toContain(role);
        publisher.resume();
      }
      faults.push(await publisher.paused());
      await server.stop();
      publisher.resume();
      await delay(OUTAGE_MS);
      await server.start();

      expect(await publisher.exited).toBe(0);
      expect(faults.every((seq) => seq < TOTAL)).toBe(true);
      expect(await received).toEqual(range(1, TOTAL));
    } catch (err) {
      throw new Error(`${(err as Error).message}\npublisher output:\n${publisher.output.join('\n')}`, {
        cause: err,
      });
    } finally {
      publisher.child.kill();
      await runtime.close();
      await db.drop();
      await dropRole(role);
    }
  });
});

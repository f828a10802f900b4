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
  publish,
  range,
  spawnPublisher,
  terminateListeners,
} from './support.js';

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

async function startRuntime(databaseUrl: string, logger = captureLogger('info').logger): Promise<Runtime> {
  return createRuntime({
    config: configFor(databaseUrl, { PROGRESS_NOTIFY_TYPE: 'postgres', PROGRESS_FALLBACK_AFTER: '2000' }),
    logger,
    listenerReconnect: { minDelayMs: 50, maxDelayMs: 1_000 },
    notifierRetry: { minDelayMs: 200, maxDelayMs: 2_000 },
  });
}

function healthyOnPostgres(runtime: Runtime): Promise<NotifierInfo> {
  return firstValueFrom(
    runtime.notifier.info$.pipe(
      filter((info) => info.active === 'postgres' && info.healthy),
      timeout(60_000),
    ),
  );
}

function publishThrough(runtime: Runtime, taskId: string, onAppended: (seq: number) => void): Promise<void> {
  return publish({
    append: (id, events, options) => runtime.notifier.append(id, events, options),
    latestSeq: async (id) => (await runtime.store.latestSeqs([id])).get(id) ?? 0,
    taskId,
    total: TOTAL,
    onAppended,
  });
}

describe('exactly once, in order, through the postgres transport', () => {
  it('while the listener backend is killed with pg_terminate_backend three times', async () => {
    const db = await createTestDatabase({ serverUrl: server.url, prefix: 'xo_kill' });
    const { logger, lines } = captureLogger('info');
    const runtime = await startRuntime(db.url, logger);
    try {
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
      const received = collectSeqs(runtime.streams, taskId, STREAM_TIMEOUT_MS);
      const infos: NotifierInfo[] = [];
      const subscription = runtime.notifier.info$.subscribe((info) => infos.push(info));

      const thresholds = [2_000, 4_500, 7_000];
      const kills: Promise<number>[] = [];
      let killing: Promise<number> | null = null;
      await publishThrough(runtime, taskId, (seq) => {
        if (killing || thresholds.length === 0 || seq < thresholds[0]!) return;
        thresholds.shift();
        // Kill only a listener that is back from the previous kill, so that each kill counts.
        killing = healthyOnPostgres(runtime)
          .then(() => terminateListeners(server.url, db.name))
          .finally(() => (killing = null));
        kills.push(killing);
      });

      expect(await received).toEqual(range(1, TOTAL));
      expect(await Promise.all(kills)).toEqual([1, 1, 1]);
      const lost = lines.filter((line) => String(line.msg).startsWith('listener connection lost'));
      const back = lines.filter((line) => line.msg === 'listener reconnected');
      expect(lost).toHaveLength(3);
      expect(back).toHaveLength(3);
      // Each reconnect came well within the fallback delay: polling never took over.
      expect(infos.some((info) => info.fallback)).toBe(false);
      await healthyOnPostgres(runtime);
      subscription.unsubscribe();
    } finally {
      await runtime.close();
      await db.drop();
    }
  });

  it('while the PostgreSQL server is stopped for 10 s and started again', async () => {
    const db = await createTestDatabase({ serverUrl: server.url, prefix: 'xo_stop' });
    const runtime = await startRuntime(db.url);
    try {
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
      const received = collectSeqs(runtime.streams, taskId, STREAM_TIMEOUT_MS);
      const infos: NotifierInfo[] = [];
      const subscription = runtime.notifier.info$.subscribe((info) => infos.push(info));

      let outage: Promise<void> | null = null;
      await publishThrough(runtime, taskId, (seq) => {
        if (outage || seq < 3_000) return;
        outage = (async () => {
          await server.stop();
          await delay(OUTAGE_MS);
          await server.start();
        })();
      });
      await outage;

      expect(await received).toEqual(range(1, TOTAL));
      subscription.unsubscribe();
      // The notifier saw the listener die, and is on postgres again at the end.
      expect(infos.some((info) => !info.healthy)).toBe(true);
      await healthyOnPostgres(runtime);
    } finally {
      await runtime.close();
      await db.drop();
    }
  });

  it('with the publisher in another process, through kills and a 10 s stop', async () => {
    const db = await createTestDatabase({ serverUrl: server.url, prefix: 'xo_two' });
    const runtime = await startRuntime(db.url);
    const taskId = uniqueName('task');
    await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
    const received = collectSeqs(runtime.streams, taskId, STREAM_TIMEOUT_MS);
    const publisher = spawnPublisher({ DATABASE_URL: db.url, TASK_ID: taskId, TOTAL: String(TOTAL) });
    try {
      await publisher.reached(2_000);
      // Both processes' listeners (the subscriber's is the one that matters).
      expect(await terminateListeners(server.url, db.name)).toBeGreaterThanOrEqual(1);
      await publisher.reached(4_000);
      await healthyOnPostgres(runtime);
      expect(await terminateListeners(server.url, db.name)).toBeGreaterThanOrEqual(1);
      await publisher.reached(6_000);
      await server.stop();
      await delay(OUTAGE_MS);
      await server.start();

      expect(await publisher.exited).toBe(0);
      expect(await received).toEqual(range(1, TOTAL));
    } catch (err) {
      throw new Error(`${(err as Error).message}\npublisher output:\n${publisher.output.join('\n')}`, {
        cause: err,
      });
    } finally {
      publisher.child.kill();
      await runtime.close();
      await db.drop();
    }
  });
});

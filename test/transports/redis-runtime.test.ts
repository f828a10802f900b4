import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '@nodebatch/runtime';
import { createTestDatabase, freePort, startRedis, uniqueName } from '@nodebatch/testkit';
import type { RedisServer, TestDatabase } from '@nodebatch/testkit';
import { dropRedisMessages, startDroppingProxy } from './dropping-proxy.js';
import {
  captureLogger,
  collectSeqs,
  configFor,
  created,
  expectStaysOnPolling,
  onConfiguredTransport,
  publish,
  range,
  recordHints,
  throughRuntime,
} from './support.js';

/**
 * The Redis transport as services use it, through createRuntime and its
 * notifier, on a private redis-server that the test restarts.
 */

let redis: RedisServer;
let db: TestDatabase;

beforeAll(async () => {
  redis = await startRedis();
  db = await createTestDatabase({ prefix: 'redisrt' });
});

afterAll(async () => {
  await redis?.destroy();
  await db?.drop();
});

describe('redis transport through the runtime', () => {
  it('delivers 10,000 events exactly once, in order, while Redis restarts twice, and Redis delivers again after each', async () => {
    const { logger } = captureLogger('info');
    const runtime = await createRuntime({
      config: configFor(db.url, {
        PROGRESS_NOTIFY_TYPE: 'redis',
        REDIS_URL: redis.url,
        PROGRESS_FALLBACK_AFTER: '2000',
        PROGRESS_POLL_INTERVAL: '200',
      }),
      logger,
      redisChannel: uniqueName('progress'),
      notifierRetry: { minDelayMs: 200, maxDelayMs: 2_000 },
    });
    try {
      expect(runtime.notifier.info).toMatchObject({ configured: 'redis', active: 'redis', fallback: false });
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
      const received = collectSeqs(runtime.streams, taskId, 150_000);
      const observed = recordHints(runtime, taskId);
      const stops = [3_000, 6_000];
      /** Per restart: the seq published when Redis stopped, and when Redis delivered again. */
      const restarts: { stoppedAt: number; recoveredAt: number }[] = [];
      let starting: Promise<void> | null = null;
      await publish({
        ...throughRuntime(runtime),
        taskId,
        total: 10_000,
        async onAppended(seq) {
          if (!starting) {
            if (stops.length === 0 || seq < stops[0]!) return;
            stops.shift();
            // Held until Redis is down: the restart lands mid-stream, and appends go on while it is away.
            await redis.stop();
            restarts.push({ stoppedAt: seq, recoveredAt: 0 });
            starting = redis.start();
            return;
          }
          const restart = restarts.at(-1)!;
          if (seq < restart.stoppedAt + 1_000) return;
          // Held until the notifier delivers through Redis again: what follows must come by Redis.
          await starting;
          await onConfiguredTransport(runtime);
          restart.recoveredAt = seq;
          starting = null;
        },
      });
      expect(await received).toEqual(range(1, 10_000));
      observed.stop();
      expect(restarts).toHaveLength(2);
      for (const [index, { recoveredAt }] of restarts.entries()) {
        const until = restarts[index + 1]?.stoppedAt ?? 10_000;
        const after = observed.hints.filter((hint) => hint.seq > recoveredAt && hint.seq <= until);
        // Published messages, not polling or the position check, announced what came after the restart.
        expect(recoveredAt).toBeGreaterThan(0);
        expect(after.filter((hint) => hint.active !== 'redis' || hint.fallback)).toEqual([]);
        expect(after.filter((hint) => hint.pushed).length).toBeGreaterThan(0);
      }
    } finally {
      await runtime.close();
    }
  });

  it('stays on polling, and polling delivers everything, when Redis takes the subscription but no message comes back', async () => {
    const proxy = await startDroppingProxy({ host: '127.0.0.1', port: redis.port }, dropRedisMessages);
    const { logger, lines } = captureLogger('debug');
    const runtime = await createRuntime({
      config: configFor(db.url, {
        PROGRESS_NOTIFY_TYPE: 'redis',
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        PROGRESS_POLL_INTERVAL: '100',
      }),
      logger,
      redisChannel: uniqueName('progress'),
      notifierRetry: { minDelayMs: 200, maxDelayMs: 1_000 },
    });
    try {
      // The transport started (connected and subscribed), but its probe never came back.
      expect(runtime.notifier.info).toMatchObject({ configured: 'redis', active: 'polling', fallback: true });
      expect(runtime.notifier.info.reason).toMatch(/did not come back/);
      await expectStaysOnPolling(runtime, lines, 'redis');
      expect(proxy.dropped).toBeGreaterThan(0);
    } finally {
      await runtime.close();
      await proxy.close();
    }
  });

  it('falls back to polling with a Redis diagnosis when Redis cannot be reached', async () => {
    const closedPort = await freePort();
    const secret = `nb-redis-secret-${uniqueName('pw')}`;
    const { logger, lines, text } = captureLogger('info');
    const runtime = await createRuntime({
      config: configFor(db.url, {
        PROGRESS_NOTIFY_TYPE: 'redis',
        REDIS_URL: `redis://:${secret}@127.0.0.1:${closedPort}`,
        PROGRESS_POLL_INTERVAL: '100',
      }),
      logger,
    });
    try {
      expect(runtime.notifier.info).toMatchObject({ configured: 'redis', active: 'polling', fallback: true });
      expect(runtime.notifier.info.reason).toContain(`127.0.0.1:${closedPort}`);
      const error = lines.find((line) => line.level === 50);
      expect(error).toMatchObject({
        code: 'ECONNREFUSED',
        target: { host: '127.0.0.1', port: closedPort, passwordSet: true },
      });
      expect((error?.checklist as string[]).join('\n')).toContain('REDIS_PORT');
      expect(
        lines.filter((line) => String(line.msg).startsWith('using polling as fallback for redis: ')),
      ).toHaveLength(1);
      expect(text()).not.toContain(secret);
    } finally {
      await runtime.close();
    }
  });
});

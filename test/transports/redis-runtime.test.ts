import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '@nodebatch/runtime';
import { createTestDatabase, freePort, startRedis, uniqueName } from '@nodebatch/testkit';
import type { RedisServer, TestDatabase } from '@nodebatch/testkit';
import { captureLogger, collectSeqs, configFor, created, publish, range } from './support.js';

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
  it('delivers 10,000 events exactly once, in order, while Redis restarts twice', async () => {
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
      const restarts = [3_000, 6_000];
      const restarting: Promise<void>[] = [];
      let current: Promise<void> | null = null;
      await publish({
        append: (id, events, options) => runtime.notifier.append(id, events, options),
        latestSeq: async (id) => (await runtime.store.latestSeqs([id])).get(id) ?? 0,
        taskId,
        total: 10_000,
        onAppended(seq) {
          if (current || restarts.length === 0 || seq < restarts[0]!) return;
          restarts.shift();
          current = redis.restart().finally(() => (current = null));
          restarting.push(current);
        },
      });
      await Promise.all(restarting);
      expect(restarting).toHaveLength(2);
      expect(await received).toEqual(range(1, 10_000));
    } finally {
      await runtime.close();
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

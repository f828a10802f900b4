import { createLogger, loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import { Redis } from 'ioredis';
import type { TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBatchConsumer } from './batch-consumer.js';
import type { BatchConsumer, BatchJobProcessor } from './batch-consumer.js';
import { InvalidBatchJobError, QueueUnavailableError, createBatchQueue } from './batch-queue.js';
import { QUEUE_REDIS_PREFIX } from './queue-backend.js';

const logger = createLogger({ level: 'silent' });

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase({ prefix: 'nb_queue' });
});
const usedQueues: string[] = [];
afterAll(async () => {
  await database?.drop();
  // Only this file's queues: their names are unique.
  const redis = new Redis(sharedRedisUrl());
  try {
    for (const name of usedQueues) {
      for await (const keys of redis.scanStream({ match: `${QUEUE_REDIS_PREFIX}:${name}:*`, count: 500 })) {
        if ((keys as string[]).length > 0) await redis.del(...(keys as string[]));
      }
    }
  } finally {
    redis.disconnect();
  }
});

function configFor(backend: 'redis' | 'postgres'): NodebatchConfig {
  const queueName = uniqueName('batches');
  usedQueues.push(queueName);
  return loadConfig({
    env: {
      DATABASE_URL: database.url,
      QUEUE_NAME: queueName,
      ...(backend === 'redis' && { REDIS_URL: sharedRedisUrl() }),
    },
  }).config;
}

describe.each(['redis', 'postgres'] as const)('batch queue on %s', (backend) => {
  it('chooses the backend from the configuration', () => {
    const queue = createBatchQueue({ config: configFor(backend), logger });
    expect(queue.backend).toBe(backend);
    return queue.close();
  });

  it('runs one job per task however often it is enqueued', async () => {
    const config = configFor(backend);
    const queue = createBatchQueue({ config, logger });
    const seen: string[] = [];
    const consumer = createBatchConsumer({
      config,
      logger,
      processor: async ({ taskId }) => {
        seen.push(taskId);
        return 'finished';
      },
    });
    try {
      await consumer.ready();
      await queue.enqueue({ taskId: 'task-a' });
      await queue.enqueue({ taskId: 'task-a' });
      await queue.enqueue({ taskId: 'task-b' });
      await vi.waitFor(() => expect([...seen].sort()).toEqual(['task-a', 'task-b']), { timeout: 15_000 });
      // A third enqueue of a finished task is still the same (kept) job.
      await queue.enqueue({ taskId: 'task-a' });
      await queue.enqueue({ taskId: 'task-c' });
      await vi.waitFor(() => expect(seen).toContain('task-c'), { timeout: 15_000 });
      expect(seen.filter((id) => id === 'task-a')).toHaveLength(1);
      // What the orphan sweep asks: a finished job, and a job the queue never had.
      await vi.waitFor(async () => expect(await queue.jobState('task-c')).toBe('completed'));
      expect(await queue.jobState('never-enqueued')).toBe('unknown');
    } finally {
      await consumer.close();
      await queue.close();
    }
  });

  it('refuses job data that fails the schema', async () => {
    const queue = createBatchQueue({ config: configFor(backend), logger });
    try {
      await expect(queue.enqueue({ taskId: 'a:b' })).rejects.toBeInstanceOf(InvalidBatchJobError);
      await expect(queue.enqueue({ taskId: '123' })).rejects.toBeInstanceOf(InvalidBatchJobError);
      await expect(queue.enqueue({} as never)).rejects.toBeInstanceOf(InvalidBatchJobError);
    } finally {
      await queue.close();
    }
  });

  it('gives the job handed back by a closing consumer to the next consumer', async () => {
    const config = configFor(backend);
    const queue = createBatchQueue({ config, logger });
    const runs: string[] = [];
    let closing: () => void = () => undefined;
    const closingStarted = new Promise<void>((resolve) => (closing = resolve));
    const first = createBatchConsumer({
      config,
      logger,
      processor: async () => {
        runs.push('first');
        // As a worker does on SIGTERM: finish what runs, then give the rest back.
        await closingStarted;
        return 'handed-back';
      },
    });
    let second: BatchConsumer | undefined;
    try {
      await first.ready();
      await queue.enqueue({ taskId: 'handed' });
      await vi.waitFor(() => expect(runs).toEqual(['first']), { timeout: 15_000 });
      const closed = first.close();
      closing();
      await closed;
      second = createBatchConsumer({
        config,
        logger,
        processor: async () => {
          runs.push('second');
          return 'finished';
        },
      });
      // A fetch the closing consumer had already in flight may take the job once more; it hands it back again.
      await vi.waitFor(() => expect(runs).toContain('second'), { timeout: 15_000 });
      expect(runs.filter((run) => run === 'second')).toHaveLength(1);
    } finally {
      closing();
      await first.close();
      await second?.close();
      await queue.close();
    }
  });

  it('hands the job of a consumer that stopped renewing its lock to another consumer', async () => {
    const config = configFor(backend);
    const queue = createBatchQueue({ config, logger });
    const runs: string[] = [];
    let releaseStuck: () => void = () => undefined;
    const stuck: BatchJobProcessor = () =>
      new Promise((resolve) => {
        runs.push('stuck');
        releaseStuck = () => resolve('finished');
      });
    const queueTimings = { lockDurationMs: 1000, stalledIntervalMs: 500 };
    const first = createBatchConsumer({ config, logger, processor: stuck, ...queueTimings });
    let second: BatchConsumer | undefined;
    try {
      await first.ready();
      await queue.enqueue({ taskId: 'stalls' });
      await vi.waitFor(() => expect(runs).toEqual(['stuck']), { timeout: 15_000 });
      // A forced close stops lock renewal as a killed process would; the processor never returns.
      await first.close({ force: true });
      second = createBatchConsumer({
        config,
        logger,
        ...queueTimings,
        processor: async () => {
          runs.push('taken over');
          return 'finished';
        },
      });
      await vi.waitFor(() => expect(runs).toEqual(['stuck', 'taken over']), { timeout: 20_000 });
    } finally {
      releaseStuck();
      await second?.close();
      await queue.close();
    }
  });
});

describe('an unreachable Redis', () => {
  // Nothing listens on port 1: every connection attempt is refused at once.
  const unreachable = () =>
    loadConfig({
      env: { DATABASE_URL: database.url, REDIS_URL: 'redis://127.0.0.1:1', QUEUE_NAME: uniqueName('x') },
    }).config;

  it('fails a consumer start-up with the target and the cause', async () => {
    const consumer = createBatchConsumer({
      config: unreachable(),
      logger,
      processor: async () => 'finished',
    });
    try {
      const failure = consumer.ready(1000);
      await expect(failure).rejects.toBeInstanceOf(QueueUnavailableError);
      await expect(failure).rejects.toThrow(/127\.0\.0\.1.*ECONNREFUSED/);
    } finally {
      await consumer.close({ force: true });
    }
  });

  it('fails an enqueue instead of waiting for Redis forever', async () => {
    const queue = createBatchQueue({ config: unreachable(), logger, enqueueTimeoutMs: 1000 });
    try {
      const failure = queue.enqueue({ taskId: 'never' });
      await expect(failure).rejects.toBeInstanceOf(QueueUnavailableError);
      await expect(failure).rejects.toThrow(/127\.0\.0\.1.*ECONNREFUSED/);
    } finally {
      await queue.close().catch(() => undefined);
    }
  }, 30_000);
});

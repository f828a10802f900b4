import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import { createBatchConsumer } from '@nodebatch/runtime';
import { startPostgres, startRedis } from '@nodebatch/testkit';
import type { PostgresServer, RedisServer } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { startWorker } from './start-worker.js';
import type { WorkerHandle } from './start-worker.js';
import { testEnv } from '../test/support/batch-harness.js';
import { createWorkerHealth, startHealthServer } from './worker-health.js';

const logger = createLogger({ level: 'silent' });
/** Held longer than this, the event loop fails liveness (well above a test's GC pauses). */
const MAX_LOOP_DELAY_MS = 2000;
const EVENT_LOOP_WINDOW_MS = 5000;

let postgres: PostgresServer;
let redis: RedisServer;
let config: NodebatchConfig;
let worker: WorkerHandle;

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  config = loadConfig({
    env: {
      ...testEnv(postgres.url, { redisUrl: redis.url }),
      NODEBATCH_CLUSTER: 'simulated',
      WORKER_HEALTH_PORT: '0',
    },
  }).config;
  worker = await startWorker({
    config,
    logger,
    health: {
      host: '127.0.0.1',
      checkTimeoutMs: 1000,
      maxEventLoopDelayMs: MAX_LOOP_DELAY_MS,
      // A stall is remembered for one to two windows. With 1 s a loaded CI
      // machine once answered the probe 200: the windows can rotate the stall
      // out before the probe is answered.
      eventLoopWindowMs: EVENT_LOOP_WINDOW_MS,
    },
  });
}, 120_000);

afterAll(async () => {
  await worker?.close({ graceMs: 0 });
  await Promise.all([postgres?.destroy(), redis?.destroy()]);
});

async function probe(path: '/healthz' | '/readyz') {
  const response = await fetch(`${worker.healthUrl}${path}`);
  return {
    status: response.status,
    body: (await response.json()) as { reason: string | null; checks: Record<string, { ok: boolean }> },
  };
}

describe('the worker health endpoint', () => {
  it('is served on WORKER_HEALTH_PORT, live and ready once the worker started', async () => {
    expect(worker.healthUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await probe('/healthz')).toMatchObject({
      status: 200,
      body: { reason: null, checks: { eventLoop: { ok: true }, consumer: { ok: true } } },
    });
    expect(await probe('/readyz')).toMatchObject({
      status: 200,
      body: { reason: null, checks: { queue: { ok: true }, database: { ok: true } } },
    });
    expect((await fetch(`${worker.healthUrl}/metrics`)).status).toBe(404);
  });

  it.each([
    { server: 'Redis', what: 'the queue', check: 'queue' },
    { server: 'PostgreSQL', what: 'the event log', check: 'database' },
  ] as const)(
    'is not ready while $server ($what) is down, stays live, and is ready again when it is back',
    async ({ server: name, check }) => {
      const server = name === 'Redis' ? redis : postgres;
      await server.stop();
      await vi.waitFor(
        async () => {
          const { status, body } = await probe('/readyz');
          expect(status).toBe(503);
          expect(body.checks[check]?.ok).toBe(false);
          expect(body.reason).toMatch(new RegExp(`(^|; )${check}: `));
        },
        { timeout: 20_000, interval: 200 },
      );
      expect((await probe('/healthz')).status).toBe(200);
      await server.start();
      await vi.waitFor(async () => expect((await probe('/readyz')).status).toBe(200), {
        timeout: 30_000,
        interval: 200,
      });
    },
  );

  it('is not live after the event loop was held too long, and live again once the stall is past', async () => {
    const heldUntil = Date.now() + MAX_LOOP_DELAY_MS + 500;
    while (Date.now() < heldUntil) {
      // Holds the event loop, as a runaway computation in the worker would.
    }
    const stalled = await probe('/healthz');
    expect(stalled.status).toBe(503);
    expect(stalled.body.reason).toMatch(/eventLoop: the event loop was held for \d+ ms/);
    // Forgotten after at most two windows.
    await vi.waitFor(async () => expect((await probe('/healthz')).status).toBe(200), {
      timeout: 2 * EVENT_LOOP_WINDOW_MS + 10_000,
      interval: 200,
    });
  }, 60_000);
});

describe('a health port that cannot be served', () => {
  it('is refused naming WORKER_HEALTH_PORT and the cause', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const health = createWorkerHealth({
        consumer: { running: true, check: () => Promise.reject(new Error('not asked')) },
        readEventLog: () => Promise.resolve(0),
        stopping: () => false,
      });
      onTestFinished(() => health.stop());
      await expect(
        startHealthServer({ health, port, host: '127.0.0.1', logger: createLogger({ level: 'silent' }) }),
      ).rejects.toThrow(new RegExp(`port ${port} \\(WORKER_HEALTH_PORT\\): .*EADDRINUSE`));
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

describe('liveness of the queue consumer', () => {
  it('fails when the consumer stopped taking jobs while the worker was not stopping', async () => {
    const consumer = createBatchConsumer({
      config,
      logger,
      processor: () => Promise.resolve('finished'),
    });
    await consumer.ready();
    let stopping = false;
    const health = createWorkerHealth({
      consumer,
      readEventLog: () => Promise.resolve(0),
      stopping: () => stopping,
    });
    try {
      expect(health.liveness()).toMatchObject({ ok: true });
      await consumer.close();
      expect(health.liveness()).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/^consumer: the queue consumer stopped taking jobs/),
      });
      stopping = true;
      expect(health.liveness()).toMatchObject({ ok: true });
      expect(await health.readiness()).toMatchObject({ ok: false, checks: { stopping: { ok: false } } });
    } finally {
      health.stop();
    }
  });
});

import { loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import type { NewEvent, StoredEvent } from '@nodebatch/progress';
import {
  BATCH_JOB_NAME,
  QUEUE_REDIS_PREFIX,
  createBatchConsumer,
  createBatchQueue,
  createRuntime,
  queueRedisOptions,
} from '@nodebatch/runtime';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { Queue } from 'bullmq';
import { firstValueFrom, timeout, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ORPHANED_CODE, sweepOrphanedTasks } from './orphan-sweep.js';
import type { OrphanSweepDeps } from './orphan-sweep.js';
import { startWorker } from './start-worker.js';
import { removeQueueKeys } from '../test/support/remove-queue-keys.js';
import { capturingLogger, testEnv } from '../test/support/batch-harness.js';

/*
 * No task stays running forever: a task that is running or cancelling while
 * the queue has no live job for it (the job was removed, the queue flushed)
 * is ended with TaskFailed ORPHANED, once, however many workers sweep at the
 * same moment. Real PostgreSQL, real BullMQ on the shared Redis.
 */

const { logger, lines: logLines } = capturingLogger();

describe('the orphan sweep', () => {
  let database: TestDatabase;
  let config: NodebatchConfig;
  /** Two processes' worth of parts: each sweeper has its own pool, store and queue connection. */
  let runtimes: Runtime[] = [];
  let queues: BatchQueue[] = [];
  let rawQueue: Queue;

  beforeAll(async () => {
    database = await createTestDatabase({ prefix: 'nb_orphans' });
    // No worker consumes this queue until the last test: waiting jobs stay waiting.
    config = loadConfig({
      env: { ...testEnv(database.url, { redisUrl: sharedRedisUrl() }), NODEBATCH_CLUSTER: 'simulated' },
    }).config;
    runtimes = await Promise.all([0, 1].map(() => createRuntime({ config, logger })));
    queues = [0, 1].map(() => createBatchQueue({ config, logger }));
    rawQueue = new Queue(config.queue.name, {
      prefix: QUEUE_REDIS_PREFIX,
      connection: queueRedisOptions(config.redis!, 'producer'),
    });
  }, 60_000);

  afterAll(async () => {
    await rawQueue?.close();
    await Promise.all(queues.map((queue) => queue.close()));
    await Promise.all(runtimes.map((runtime) => runtime.close()));
    await database?.drop();
    if (config) await removeQueueKeys(sharedRedisUrl(), config.queue.name);
  }, 60_000);

  const runtime = (): Runtime => runtimes[0]!;

  function sweeper(index: number): OrphanSweepDeps {
    const own = runtimes[index]!;
    const queue = queues[index]!;
    return {
      listTasks: (options) => own.store.listTasks(options),
      jobState: (task) => queue.jobState(task.taskId),
      append: (taskId, events, options) => own.notifier.append(taskId, events, options),
      logger,
    };
  }

  /** A task with these events after TaskCreated; `job` says what the queue holds for it. */
  async function task(after: NewEvent[], job: 'none' | 'waiting' | 'removed'): Promise<string> {
    const taskId = uniqueName('task').replaceAll('_', '-');
    const created: NewEvent = {
      type: 'TaskCreated',
      data: { userId: 'tester', action: 'cordon', nodes: ['n1', 'n2'], params: {} },
    };
    await runtime().notifier.append(taskId, [created, ...after], { expectedSeq: 0 });
    if (job !== 'none') await queues[0]!.enqueue({ taskId });
    if (job === 'removed') await rawQueue.remove(taskId);
    return taskId;
  }

  const started: NewEvent = { type: 'TaskStarted', data: { workerId: 'gone', attempt: 1 } };
  const cancelRequested: NewEvent = { type: 'CancelRequested', data: { by: 'tester' } };

  function wholeStream(taskId: string): Promise<StoredEvent[]> {
    return firstValueFrom(runtime().streams.events$(taskId).pipe(timeout(60_000), toArray()));
  }

  it('ends a task whose job failed for good but whose TaskFailed was never written', async () => {
    // As a dead job whose handler could not reach the database leaves it: the job failed, the task runs.
    const taskId = await task([started], 'none');
    await rawQueue.add(BATCH_JOB_NAME, { taskId }, { jobId: taskId, attempts: 1 });
    const consumer = createBatchConsumer({
      config,
      logger,
      processor: () => Promise.reject(new Error('the database was away')),
    });
    try {
      await vi.waitFor(async () => expect(await queues[0]!.jobState(taskId)).toBe('failed'), {
        timeout: 20_000,
      });
    } finally {
      await consumer.close();
    }
    const result = await sweepOrphanedTasks(sweeper(0), { minIdleMs: 0 });
    expect(result.ended).toEqual([taskId]);
    const events = await runtime().store.readTask(taskId);
    expect(events.at(-1)).toMatchObject({
      type: 'TaskFailed',
      data: { code: ORPHANED_CODE, error: expect.stringContaining('its job is failed') },
    });
  }, 60_000);

  it('ends every orphan exactly once when two sweepers run at the same time, and leaves live and pending tasks alone', async () => {
    const orphans = await Promise.all([
      ...Array.from({ length: 10 }, () => task([started], 'none')),
      ...Array.from({ length: 5 }, () => task([started, cancelRequested], 'removed')),
      task([cancelRequested], 'removed'),
    ]);
    const live = await task([started], 'waiting');
    const pending = await task([], 'none');
    const streams = orphans.map(wholeStream);

    // Several rounds of both at once: every round but the first finds nothing left to end.
    const results = [];
    for (let round = 0; round < 3; round++) {
      results.push(
        ...(await Promise.all([0, 1].map((index) => sweepOrphanedTasks(sweeper(index), { minIdleMs: 0 })))),
      );
    }
    const ended = results.flatMap((result) => result.ended);
    expect([...ended].sort()).toEqual([...orphans].sort());

    for (const [index, events] of (await Promise.all(streams)).entries()) {
      const failed = events.filter((event) => event.type === 'TaskFailed');
      expect(failed, `TaskFailed events of orphan ${index}`).toHaveLength(1);
      expect(events.at(-1)).toBe(failed[0]);
      expect(failed[0]!.data).toEqual({
        code: ORPHANED_CODE,
        error: expect.stringMatching(/^task was (running|cancelling) but its job is not in the queue/),
      });
    }
    // Said once per task, by the sweeper that ended it.
    const lines = logLines.filter(
      (line) => line.code === ORPHANED_CODE && orphans.includes(line.taskId as string),
    );
    expect(lines.map((line) => line.taskId).sort()).toEqual([...orphans].sort());

    for (const untouched of [live, pending]) {
      const events = await runtime().store.readTask(untouched);
      expect(events.map((event) => event.type)).not.toContain('TaskFailed');
    }
    expect((await runtime().store.getTask(live))?.status).toBe('running');
  }, 120_000);

  it('leaves a task that had an event within minIdleMs', async () => {
    const recent = await task([started], 'none');
    const result = await sweepOrphanedTasks(sweeper(0), { minIdleMs: 60_000 });
    expect(result.ended).not.toContain(recent);
    expect((await runtime().store.getTask(recent))?.status).toBe('running');
    // Once it has been idle long enough, it is ended.
    const later = await sweepOrphanedTasks(sweeper(0), {
      minIdleMs: 60_000,
      now: () => new Date(Date.now() + 61_000),
    });
    expect(later.ended).toContain(recent);
  });

  it('runs in every worker every WORKER_ORPHAN_SWEEP_INTERVAL_MS: the stream of an orphan ends', async () => {
    const orphan = await task([started], 'none');
    const stream = wholeStream(orphan);
    const worker = await startWorker({
      config: { ...config, worker: { ...config.worker, orphanSweepIntervalMs: 200 } },
      logger,
      orphanSweep: { minIdleMs: 0 },
    });
    try {
      const events = await stream;
      expect(events.at(-1)).toMatchObject({ type: 'TaskFailed', data: { code: ORPHANED_CODE } });
    } finally {
      await worker.close({ graceMs: 500 });
    }
  }, 60_000);
});

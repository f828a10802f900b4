import { createLogger } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import type { StoredEvent } from '@nodebatch/progress';
import { BATCH_JOB_NAME, QUEUE_REDIS_PREFIX, queueRedisOptions } from '@nodebatch/runtime';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { uniqueName } from '@nodebatch/testkit';
import { Queue } from 'bullmq';
import pg from 'pg';
import { firstValueFrom, timeout, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWorker } from './start-worker.js';
import type { WorkerHandle } from './start-worker.js';
import { startBatchSetup } from '../test/support/batch-setup.js';
import type { BatchSetup } from '../test/support/batch-setup.js';
import {
  simulatedClusterEnv,
  simulatedNodes,
  submitBatch,
  waitForEvents,
} from '../test/support/batch-harness.js';
import { spawnWorker, stopWorker } from '../test/support/worker-process.js';
import type { WorkerProcess } from '../test/support/worker-process.js';

/*
 * No task stays running when its job dies for good: BullMQ gives up on the
 * job (its data is invalid, its attempts are spent, or it stalled more often
 * than allowed), the worker that saw it fail appends TaskFailed with a code
 * and the reason, and every stream of the task ends. Real BullMQ on the shared
 * Redis, real workers (one in a child process that is killed with SIGKILL).
 */

const logger = createLogger({ level: 'silent' });
/** Short locks, so a killed worker's job counts as stalled within seconds. */
const QUEUE_OPTIONS = { lockDurationMs: 2000, stalledIntervalMs: 500 };
const NODE_COUNT = 40;
const nodes = simulatedNodes(NODE_COUNT);

describe('a batch job that fails for good ends its task with TaskFailed', () => {
  let setup: BatchSetup;
  let env: Record<string, string>;
  let config: NodebatchConfig;
  let runtime: Runtime;
  let queue: BatchQueue;
  /** BullMQ's own producer, for jobs createBatchQueue refuses to make (bad data, few attempts). */
  let rawQueue: Queue;
  let worker: WorkerHandle | undefined;
  let child: WorkerProcess | undefined;

  beforeAll(async () => {
    setup = await startBatchSetup('nb_dead_job', { env: simulatedClusterEnv(NODE_COUNT, 200) });
    ({ env, config, runtime, queue } = setup);
    rawQueue = new Queue(config.queue.name, {
      prefix: QUEUE_REDIS_PREFIX,
      connection: queueRedisOptions(config.redis!, 'producer'),
    });
  }, 60_000);

  afterEach(async () => {
    if (child) await stopWorker(child);
    child = undefined;
    await worker?.close({ graceMs: 500 });
    worker = undefined;
  });

  afterAll(async () => {
    await rawQueue?.close();
    await setup?.close();
  }, 60_000);

  /** A task as the gateway creates it, without its job. */
  async function createTask(): Promise<string> {
    const taskId = uniqueName('task').replaceAll('_', '-');
    await runtime.notifier.append(
      taskId,
      [{ type: 'TaskCreated', data: { userId: 'tester', action: 'cordon', nodes, params: {} } }],
      { expectedSeq: 0 },
    );
    return taskId;
  }

  /** A subscriber's whole stream: resolves when it completes (it errors on timeout). */
  function wholeStream(taskId: string): Promise<StoredEvent[]> {
    return firstValueFrom(runtime.streams.events$(taskId).pipe(timeout(45_000), toArray()));
  }

  function startInProcessWorker(maxStalledCount?: number): Promise<WorkerHandle> {
    return startWorker({
      config,
      logger,
      queue: { ...QUEUE_OPTIONS, ...(maxStalledCount !== undefined && { maxStalledCount }) },
    });
  }

  function expectEndedWith(events: readonly StoredEvent[], code: string, reason: RegExp): void {
    const terminal = events.filter((event) =>
      ['TaskCompleted', 'TaskCancelled', 'TaskFailed'].includes(event.type),
    );
    expect(terminal).toHaveLength(1);
    expect(events.at(-1)).toBe(terminal[0]);
    expect(terminal[0]).toMatchObject({ type: 'TaskFailed', data: { code } });
    expect((terminal[0]!.data as { error: string }).error).toMatch(reason);
  }

  it('invalid job data: TaskFailed INVALID_JOB_DATA, and the stream ends', async () => {
    worker = await startInProcessWorker();
    const taskId = await createTask();
    const stream = wholeStream(taskId);
    // The job id names the task, but its data does not pass the schema: no retry can fix that.
    await rawQueue.add(BATCH_JOB_NAME, { taskId: 42 }, { jobId: taskId, attempts: 5 });
    const events = await stream;
    expectEndedWith(events, 'INVALID_JOB_DATA', /invalid batch job data/);
    expect(events.map((event) => event.type)).toEqual(['TaskCreated', 'TaskFailed']);
    expect((await runtime.store.getTask(taskId))?.status).toBe('failed');
  }, 120_000);

  it('attempts exhausted: TaskFailed JOB_ATTEMPTS_EXHAUSTED with the last error, and the stream ends', async () => {
    worker = await startInProcessWorker();
    const taskId = await createTask();
    // A fault in the database itself: every run of this task fails on its TaskStarted, whatever worker runs it.
    const admin = new pg.Client({ connectionString: setup.databaseUrl });
    await admin.connect();
    try {
      await admin.query(`
        CREATE FUNCTION refuse_started() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN RAISE EXCEPTION 'injected fault: TaskStarted refused for %', NEW.task_id; END $fn$`);
      await admin.query(
        `CREATE TRIGGER refuse_started BEFORE INSERT ON events FOR EACH ROW
         WHEN (NEW.type = 'TaskStarted' AND NEW.task_id = '${taskId}') EXECUTE FUNCTION refuse_started()`,
      );
      const stream = wholeStream(taskId);
      await rawQueue.add(
        BATCH_JOB_NAME,
        { taskId },
        { jobId: taskId, attempts: 2, backoff: { type: 'fixed', delay: 50 } },
      );
      const events = await stream;
      expectEndedWith(events, 'JOB_ATTEMPTS_EXHAUSTED', /injected fault: TaskStarted refused/);
      expect(events.map((event) => event.type)).toEqual(['TaskCreated', 'TaskFailed']);
      const job = await rawQueue.getJob(taskId);
      expect(job?.attemptsMade).toBe(2);
    } finally {
      await admin.query('DROP TRIGGER IF EXISTS refuse_started ON events').catch(() => undefined);
      await admin.end();
    }
  }, 120_000);

  it('stalled too often: the job of a worker killed with SIGKILL fails, TaskFailed JOB_STALLED_TOO_OFTEN, and the stream ends', async () => {
    child = await spawnWorker(env, QUEUE_OPTIONS);
    const taskId = await submitBatch(runtime, queue, { action: 'drain', nodes, concurrency: 1 });
    const stream = wholeStream(taskId);
    await waitForEvents(runtime, taskId, (event) => event.type === 'NodeSucceeded', 2);
    // A worker that allows no stall: the first time the job's lock expires, the job is dead.
    worker = await startInProcessWorker(0);
    child.child.kill('SIGKILL');
    const events = await stream;
    expectEndedWith(events, 'JOB_STALLED_TOO_OFTEN', /stalled more than allowable limit/);
    // Only the killed worker ever ran the task.
    const starts = events.filter((event) => event.type === 'TaskStarted');
    expect(starts.map((event) => (event.data as { workerId: string }).workerId)).toEqual([child.id]);
  }, 180_000);
});

import type { NodebatchConfig } from '@nodebatch/config';
import { UnrecoverableError, WaitingError, Worker, createPostgresBackend } from 'bullmq';
import type { Job, WorkerOptions } from 'bullmq';
import { describeError, withTimeout } from '@nodebatch/progress';
import type { Logger } from 'pino';
import { BatchJobDataSchema } from './batch-job-data.js';
import { connectionErrorLogger } from './connection-error-log.js';
import type { BatchJobData } from './batch-job-data.js';
import { QueueUnavailableError } from './batch-queue.js';
import {
  batchQueueName,
  describeQueueBackend,
  queueBackendKind,
  queuePostgresOptions,
  queueRedisConnection,
  queueRedisPrefix,
} from './queue-backend.js';
import type { QueueBackendKind } from './queue-backend.js';

/** What a processor tells the consumer about a job it ran. */
export type BatchJobOutcome =
  /** The task reached its terminal event (or already had one): the job is done. */
  | 'finished'
  /** The worker is shutting down: the job goes back to the queue for another worker, which resumes from the log. */
  | 'handed-back';

export interface BatchJobContext {
  jobId: string;
  /** 1 for the first run of the job, 2 after one failed run, … (stalls are not counted). */
  attempt: number;
}

export type BatchJobProcessor = (data: BatchJobData, context: BatchJobContext) => Promise<BatchJobOutcome>;

/** Why a job will not run again. */
export type DeadJobCode = 'INVALID_JOB_DATA' | 'JOB_ATTEMPTS_EXHAUSTED' | 'JOB_STALLED_TOO_OFTEN';

/** A job that failed for good: its task must be ended, or it would stay running forever. */
export interface DeadBatchJob {
  jobId: string;
  /** The task the job ran: its data's taskId, else the job id (they are the same for every job we enqueue). */
  taskId: string;
  code: DeadJobCode;
  /** The last error, as BullMQ reported it. */
  reason: string;
}

/** Job data failed BatchJobDataSchema: retrying cannot fix it. */
export class InvalidJobDataError extends UnrecoverableError {
  readonly code = 'INVALID_JOB_DATA';
}

export interface BatchConsumerOptions {
  config: NodebatchConfig;
  logger: Logger;
  /** The named cluster whose queue this is (see batchQueueName). Default: `queue.name`. */
  cluster?: string;
  processor: BatchJobProcessor;
  /** Jobs (tasks) run at once by this consumer. Default: config.worker.jobConcurrency. */
  concurrency?: number;
  /**
   * How long a job stays locked by a worker that stopped renewing the lock
   * (killed, frozen) before another worker may take it over. Default 15000 ms.
   * The lock is renewed every half of this while the worker lives.
   */
  lockDurationMs?: number;
  /** How often this consumer looks for jobs whose lock expired. Default 10000 ms. */
  stalledIntervalMs?: number;
  /**
   * How many times a job may stall before BullMQ fails it. Default 10: a
   * stalled batch resumes from the log, so a stall is cheap; the limit only
   * stops a job that kills every worker that takes it.
   */
  maxStalledCount?: number;
  /**
   * Called once for each job that failed for good (invalid data, attempts
   * exhausted, stalled more than maxStalledCount times), after BullMQ moved
   * it to the failed set. The worker ends the task with TaskFailed here.
   * Default: only logged.
   */
  onDeadJob?: (dead: DeadBatchJob) => Promise<void>;
}

/** The worker side of the batch queue. */
export interface BatchConsumer {
  readonly backend: QueueBackendKind;
  readonly name: string;
  /**
   * Resolves when the consumer is connected and waiting for jobs; rejects
   * with QueueUnavailableError, naming the backend and the last connection
   * error, when that takes longer than `timeoutMs` (default 30000).
   */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * Stops taking jobs. Without `force` it waits for running processors to
   * return; with `force` it drops them, and their jobs are taken over by
   * another worker once their locks expire.
   */
  close(options?: { force?: boolean }): Promise<void>;
  /**
   * Whether the queue answers now: a count of the active jobs, within
   * `timeoutMs` (default 2000). Never throws; `error` names what failed. A
   * Redis connection that is not up is reported at once, without a command
   * that would wait in ioredis's offline queue.
   */
  check(timeoutMs?: number): Promise<QueueCheck>;
  /** False once the consumer stopped taking jobs: closed, or its job loop ended. */
  readonly running: boolean;
}

/** What {@link BatchConsumer.check} found. */
export type QueueCheck = { ok: true } | { ok: false; error: string };

/** The slice of BullMQ's Worker that both backends share and this module uses. */
interface WorkerHandle {
  waitUntilReady(): Promise<unknown>;
  close(force?: boolean): Promise<void>;
  isRunning(): boolean;
  getBackend(): {
    getCounts(types: ['active']): Promise<number[]>;
    /** The Redis backend's connection; absent on PostgreSQL. */
    readonly client?: Promise<{ readonly status: string }>;
  };
  on(event: string, listener: (...args: never[]) => void): unknown;
}

export function createBatchConsumer(options: BatchConsumerOptions): BatchConsumer {
  const { config, processor } = options;
  const backend = queueBackendKind(config);
  const name = batchQueueName(config, options.cluster);
  const logger = options.logger.child({ component: 'batch-consumer', queue: name, backend });
  const lockDuration = options.lockDurationMs ?? 15_000;
  const concurrency = options.concurrency ?? config.worker.jobConcurrency;

  const processJob = async (job: Job<BatchJobData>, token?: string): Promise<void> => {
    const parsed = BatchJobDataSchema.safeParse(job.data);
    if (!parsed.success) {
      // Retrying cannot fix bad data: fail the job once, with the reason.
      logger.error({ jobId: job.id, issues: parsed.error.issues }, 'invalid batch job data; job failed');
      throw new InvalidJobDataError(`invalid batch job data: ${parsed.error.message}`);
    }
    const outcome = await processor(parsed.data, {
      jobId: job.id ?? parsed.data.taskId,
      attempt: job.attemptsMade + 1,
    });
    if (outcome === 'handed-back') {
      await job.moveToWait(token);
      // Tells BullMQ the job was moved on purpose, not completed or failed.
      throw new WaitingError();
    }
  };

  const workerOptions = {
    concurrency,
    lockDuration,
    stalledInterval: options.stalledIntervalMs ?? 10_000,
    maxStalledCount: options.maxStalledCount ?? 10,
    // Picks a job up within a second of an empty queue getting one, even without a wake-up.
    drainDelay: 1,
  } satisfies Omit<WorkerOptions, 'connection'>;

  const redis = config.redis ? queueRedisConnection(config.redis, 'consumer') : undefined;
  const worker = (config.redis && redis
    ? new Worker(name, processJob, {
        ...workerOptions,
        prefix: queueRedisPrefix(config.redis),
        connection: redis.connection,
      })
    : new Worker(
        name,
        processJob,
        // One pool connection per running job plus one for lock renewal and the stalled check.
        { ...workerOptions, connection: queuePostgresOptions(config.database, concurrency + 2) },
        createPostgresBackend,
      )) as unknown as WorkerHandle;
  const logConnectionError = connectionErrorLogger(logger);
  let lastError: Error | undefined;
  worker.on('error', (err: Error) => {
    lastError = err;
    logConnectionError(err);
  });
  worker.on('stalled', (jobId: string) =>
    logger.warn({ jobId }, 'job stalled (its worker stopped renewing the lock); it will run again'),
  );
  worker.on('failed', (job: Job<BatchJobData> | undefined, err: Error) => {
    if (!job) return;
    const dead = deadJobOf(job, err);
    if (dead === null) {
      logger.error(
        { err, jobId: job.id, attemptsMade: job.attemptsMade },
        'batch job failed; it will run again',
      );
      return;
    }
    logger.error(
      { err, jobId: dead.jobId, taskId: dead.taskId, code: dead.code, attemptsMade: job.attemptsMade },
      'batch job failed for good; ending its task with TaskFailed',
    );
    options
      .onDeadJob?.(dead)
      .catch((hookErr: unknown) =>
        logger.error({ err: hookErr, taskId: dead.taskId }, 'could not end the task of a dead job'),
      );
  });

  return {
    backend,
    name,
    async ready(timeoutMs = 30_000) {
      await withTimeout(worker.waitUntilReady(), timeoutMs, () => {
        const cause = lastError ? `: ${lastError.message}` : '';
        return new QueueUnavailableError(
          `the batch queue did not become ready within ${timeoutMs} ms on ${JSON.stringify(
            describeQueueBackend(config, name),
          )}${cause}`,
          { cause: lastError },
        );
      });
    },
    async close(closeOptions) {
      await worker.close(closeOptions?.force ?? false);
      // BullMQ leaves a client it was given open.
      if (redis && 'cluster' in redis) await redis.cluster.quit().catch(() => redis.cluster.disconnect());
    },
    async check(timeoutMs = 2000) {
      try {
        const backend = worker.getBackend();
        if (backend.client) {
          const { status } = await withTimeout(backend.client, timeoutMs, 'the queue connection');
          if (status !== 'ready') return { ok: false, error: `the Redis connection is ${status}` };
        }
        await withTimeout(backend.getCounts(['active']), timeoutMs, 'the queue check');
        return { ok: true };
      } catch (err) {
        return { ok: false, error: describeError(err) };
      }
    },
    get running() {
      return worker.isRunning();
    },
  };
}

/** BullMQ's message for a job that stalled more than maxStalledCount times. */
const STALLED_TOO_OFTEN = /stalled more than allowable limit/i;

/** The job as a dead job when it will not run again, else null (BullMQ retries it). */
export function deadJobOf(
  job: Pick<Job, 'id' | 'data' | 'attemptsMade' | 'opts'>,
  err: Error,
): DeadBatchJob | null {
  const data: unknown = job.data;
  const dataTaskId =
    typeof data === 'object' && data !== null && typeof (data as { taskId?: unknown }).taskId === 'string'
      ? (data as { taskId: string }).taskId
      : undefined;
  const taskId = dataTaskId ?? job.id;
  if (taskId === undefined || taskId === '') return null;
  const base = { jobId: job.id ?? taskId, taskId, reason: err.message };
  if (err instanceof InvalidJobDataError) return { ...base, code: 'INVALID_JOB_DATA' };
  if (STALLED_TOO_OFTEN.test(err.message)) return { ...base, code: 'JOB_STALLED_TOO_OFTEN' };
  if (err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1)) {
    return { ...base, code: 'JOB_ATTEMPTS_EXHAUSTED' };
  }
  return null;
}

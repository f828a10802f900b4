import type { NodebatchConfig } from '@nodebatch/config';
import { NodebatchError, withTimeout } from '@nodebatch/progress';
import { Queue, createPostgresBackend } from 'bullmq';
import type { JobsOptions } from 'bullmq';
import type { Logger } from 'pino';
import { BatchJobDataSchema } from './batch-job-data.js';
import { connectionErrorLogger } from './connection-error-log.js';
import type { BatchJobData } from './batch-job-data.js';
import {
  batchQueueName,
  describeQueueBackend,
  queueBackendKind,
  queuePostgresOptions,
  queueRedisConnection,
  queueRedisPrefix,
} from './queue-backend.js';
import type { QueueBackendKind } from './queue-backend.js';

/** The producer side of the batch queue (the gateway enqueues, workers consume). */
export interface BatchQueue {
  readonly backend: QueueBackendKind;
  readonly name: string;
  /**
   * Adds the job for a task. The task id is the job id, so enqueueing the same
   * task twice is one job. Rejects with InvalidBatchJobError for bad data and
   * QueueUnavailableError when the backend cannot be reached.
   */
  enqueue(data: BatchJobData): Promise<void>;
  /** Jobs per state; a round trip to the backend, used by `doctor`. */
  jobCounts(): Promise<Record<string, number>>;
  /**
   * Where the task's job stands: `unknown` when the queue has no such job (it
   * was removed, the queue flushed, or it was never enqueued). The orphan
   * sweep asks this of tasks that look running.
   */
  jobState(taskId: string): Promise<BatchJobState>;
  close(): Promise<void>;
}

export interface BatchQueueOptions {
  config: NodebatchConfig;
  logger: Logger;
  /** The named cluster whose queue this is (see batchQueueName). Default: `queue.name`. */
  cluster?: string;
  /**
   * How long an enqueue may wait for the backend (BullMQ waits for a Redis
   * connection without limit) before it fails with QueueUnavailableError.
   * Default 10000 ms.
   */
  enqueueTimeoutMs?: number;
  /**
   * On the PostgreSQL backend, bring BullMQ's schema up to date on the first
   * connection. Default true; `nodebatch doctor` passes false to only look.
   */
  migrate?: boolean;
}

/** BullMQ's states of a job, and `unknown` for a job the queue does not have. */
export type BatchJobState =
  'waiting' | 'active' | 'delayed' | 'prioritized' | 'waiting-children' | 'completed' | 'failed' | 'unknown';

/** States in which no worker will ever run the job again (unless someone enqueues it anew). */
export const FINISHED_JOB_STATES: ReadonlySet<BatchJobState> = new Set(['completed', 'failed', 'unknown']);

/** Job data failed BatchJobDataSchema; nothing was enqueued. */
export class InvalidBatchJobError extends NodebatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_BATCH_JOB', message, options);
  }
}

/** The queue's backend (Redis or PostgreSQL) refused or could not be reached. */
export class QueueUnavailableError extends NodebatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('QUEUE_UNAVAILABLE', message, options);
  }
}

/** Name of every batch job; the queue carries one kind of job. */
export const BATCH_JOB_NAME = 'batch';

/**
 * How BullMQ retries a job whose processor threw (the database was down, the
 * worker lost its connection): the next attempt resumes from the log, so a
 * retry costs nothing but time. Finished jobs are kept a while for inspection.
 */
export const BATCH_JOB_OPTIONS: JobsOptions = {
  attempts: 20,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** The slice of BullMQ's Queue that both backends share and this module uses. */
interface QueueHandle {
  add(name: string, data: BatchJobData, options: JobsOptions): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  getJobCounts(...states: string[]): Promise<Record<string, number>>;
  getJobState(jobId: string): Promise<string>;
  close(): Promise<void>;
}

export function createBatchQueue(options: BatchQueueOptions): BatchQueue {
  const { config } = options;
  const backend = queueBackendKind(config);
  const name = batchQueueName(config, options.cluster);
  const logger = options.logger.child({ component: 'batch-queue', queue: name, backend });
  const redis = config.redis ? queueRedisConnection(config.redis, 'producer') : undefined;
  const queue = (
    config.redis && redis
      ? new Queue(name, { connection: redis.connection, prefix: queueRedisPrefix(config.redis) })
      : new Queue(
          name,
          { connection: queuePostgresOptions(config.database, 2, options.migrate ?? true) },
          createPostgresBackend,
        )
  ) as QueueHandle;
  // Without a listener an 'error' event would crash the process; the error also surfaces on enqueue.
  const logConnectionError = connectionErrorLogger(logger);
  let lastError: Error | undefined;
  queue.on('error', (err) => {
    lastError = err;
    logConnectionError(err);
  });
  const enqueueTimeoutMs = options.enqueueTimeoutMs ?? 10_000;
  const target = (): string => JSON.stringify(describeQueueBackend(config, name));

  return {
    backend,
    name,
    async enqueue(data) {
      const parsed = BatchJobDataSchema.safeParse(data);
      if (!parsed.success) {
        throw new InvalidBatchJobError(`invalid batch job data: ${parsed.error.message}`, {
          cause: parsed.error,
        });
      }
      const { taskId } = parsed.data;
      try {
        // The job id is the task id, so an add that completes after the timeout is still the one job.
        await withTimeout(
          queue.add(BATCH_JOB_NAME, parsed.data, { ...BATCH_JOB_OPTIONS, jobId: taskId }),
          enqueueTimeoutMs,
          () => {
            const cause = lastError ? `: ${lastError.message}` : '';
            return new QueueUnavailableError(
              `could not enqueue task ${taskId} within ${enqueueTimeoutMs} ms on ${target()}${cause}`,
              { cause: lastError },
            );
          },
        );
      } catch (err) {
        if (err instanceof QueueUnavailableError) throw err;
        throw new QueueUnavailableError(
          `could not enqueue task ${taskId} on ${target()}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    },
    async jobCounts() {
      return queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
    },
    async jobState(taskId) {
      return (await queue.getJobState(taskId)) as BatchJobState;
    },
    async close() {
      await queue.close();
      // BullMQ leaves a client it was given open.
      if (redis && 'cluster' in redis) await redis.cluster.quit().catch(() => redis.cluster.disconnect());
    },
  };
}

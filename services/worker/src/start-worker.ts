import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { NodebatchConfig } from '@nodebatch/config';
import type { NodeOperator } from '@nodebatch/kube';
import { SINGLE_CLUSTER_NAME } from '@nodebatch/config';
import type { PostgresEventStore } from '@nodebatch/event-store';
import type { BatchAction, EventReader } from '@nodebatch/progress';
import { TaskAlreadyEndedError, UnknownTaskError, retryingAppend } from '@nodebatch/progress';
import {
  createBatchConsumer,
  createBatchQueue,
  createRuntime,
  describeQueueBackend,
} from '@nodebatch/runtime';
import type { BatchConsumer } from '@nodebatch/runtime';
import type { DeadBatchJob } from '@nodebatch/runtime';
import type { Logger } from 'pino';
import { createAppendGroup } from './append-group.js';
import type { AppendMany } from './append-group.js';
import { runBatchTask } from './batch-task-runner.js';
import { clusterOperators } from './cluster-operators.js';
import type { AppendEvents } from './event-batcher.js';
import type { NodeRetryPolicy } from './node-retry-policy.js';
import { startOrphanSweep } from './orphan-sweep.js';
import type { OrphanSweepLoop, OrphanSweepOptions } from './orphan-sweep.js';
import type { TaskEventFeed } from './task-events.js';
import { createWorkerHealth, startHealthServer } from './worker-health.js';
import type {
  HealthServer,
  WorkerHealth,
  WorkerHealthOptions,
  WorkerHealthSources,
} from './worker-health.js';

/** The parts of a Runtime (from @nodebatch/runtime) the worker uses. */
export interface WorkerRuntime {
  /** The log; listTasks serves the orphan sweep. */
  store: EventReader & Pick<PostgresEventStore, 'listTasks'>;
  /** With appendMany, the running tasks' appends share transactions (createAppendGroup). */
  notifier: { append: AppendEvents; appendMany?: AppendMany };
  streams: TaskEventFeed;
}

export interface WorkerQueueOptions {
  /** See BatchConsumerOptions.lockDurationMs (default 15000): how soon a killed worker's job is taken over. */
  lockDurationMs?: number;
  /** See BatchConsumerOptions.stalledIntervalMs (default 10000). */
  stalledIntervalMs?: number;
  /** See BatchConsumerOptions.maxStalledCount (default 10). */
  maxStalledCount?: number;
}

export interface StartWorkerOptions {
  config: NodebatchConfig;
  logger: Logger;
  /**
   * The operator of the default (or only) cluster; the worker then serves that cluster alone.
   * Default: one operator per configured cluster it has credentials for (see clusterOperators).
   */
  operator?: NodeOperator;
  /** Default: createRuntime({ config, logger }), closed with the worker. A given runtime is not closed. */
  runtime?: WorkerRuntime;
  /** Default: `<hostname>-<pid>-<random>`. */
  id?: string;
  queue?: WorkerQueueOptions;
  /** Retries of a node after a retryable failure. Default DEFAULT_NODE_RETRY_POLICY. */
  retry?: NodeRetryPolicy;
  /** Nodes at once per action when a batch names none. Default DEFAULT_ACTION_CONCURRENCY. */
  concurrencyByAction?: Readonly<Record<BatchAction, number>>;
  /**
   * The orphan sweep, every config.worker.orphanSweepIntervalMs (0: none).
   * Default: tasks idle for a minute are looked at.
   */
  orphanSweep?: OrphanSweepOptions;
  /** Event batching, see EventBatcherOptions. Defaults 0 ms (the end of the turn) and 100 events. */
  flushDelayMs?: number;
  maxBatchEvents?: number;
  /**
   * The liveness and readiness probes, see WorkerHealthOptions. They are
   * served over HTTP on `port` (default config.worker.healthPort; none when
   * that is unset) at `host` (default 0.0.0.0).
   */
  health?: WorkerHealthOptions & { port?: number; host?: string };
}

export interface WorkerHandle {
  readonly id: string;
  /** What the probes report. */
  readonly health: WorkerHealth;
  /** Base URL of /healthz and /readyz; undefined without a health port. */
  readonly healthUrl: string | undefined;
  /**
   * Stops taking jobs, lets in-flight nodes finish within `graceMs` (default
   * config.worker.shutdownGraceMs), then hands the unfinished tasks back to the
   * queue, where another worker resumes them from the log.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

type AppendOptionsOf = NonNullable<Parameters<AppendEvents>[2]>;

/** Beyond the grace period, how long running jobs get to flush their events and hand back. */
const HAND_BACK_MARGIN_MS = 10_000;

export async function startWorker(options: StartWorkerOptions): Promise<WorkerHandle> {
  const { config } = options;
  const id = options.id ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const logger = options.logger.child({ component: 'worker', workerId: id });
  const clusters = clusterOperators(config, logger, options.operator);
  // A runtime the caller gave is the caller's to close; one created here is closed here.
  const ownRuntime = options.runtime ? undefined : await createRuntime({ config, logger });
  const runtime: WorkerRuntime = options.runtime ?? ownRuntime!;

  const shutdown = new AbortController();
  const halt = new AbortController();
  const deps = {
    store: runtime.store,
    // A short database outage does not stop a run: each append is retried within the budget,
    // under one idempotency key, so a retry never writes a batch twice. Past the budget the
    // run fails and BullMQ retries the job, which resumes from the log.
    append: retryingAppend<AppendOptionsOf>(workerAppend(runtime.notifier), {
      budgetMs: config.worker.appendRetryBudgetMs,
      logger,
    }) satisfies AppendEvents,
    feed: runtime.streams,
    logger,
  };

  // One consumer per cluster queue: a worker takes only the batches of clusters it can reach.
  const consumers: BatchConsumer[] = clusters.map(({ name, operator, logger: clusterLogger }) =>
    createBatchConsumer({
      config,
      logger: clusterLogger,
      cluster: name,
      ...options.queue,
      onDeadJob: (dead) => endDeadTask(deps.append, dead, logger),
      processor: async ({ taskId }) => {
        if (shutdown.signal.aborted) return 'handed-back';
        return runBatchTask(
          { ...deps, operator, cluster: name, logger: clusterLogger },
          {
            taskId,
            workerId: id,
            shutdown: shutdown.signal,
            halt: halt.signal,
            ...(options.retry && { retry: options.retry }),
            ...(options.concurrencyByAction && { concurrencyByAction: options.concurrencyByAction }),
            ...(options.flushDelayMs !== undefined && { flushDelayMs: options.flushDelayMs }),
            ...(options.maxBatchEvents !== undefined && { maxBatchEvents: options.maxBatchEvents }),
          },
        );
      },
    }),
  );
  const closeConsumers = async (force: boolean): Promise<void> => {
    await Promise.all(consumers.map((consumer) => consumer.close({ force })));
  };
  /** Undoes a start that failed; the start's error is what the caller sees, a failure to close is logged. */
  const abandonStart = async (): Promise<void> => {
    await closeConsumers(true).catch((err: unknown) =>
      logger.warn({ err }, 'closing the queue consumers of a failed start failed'),
    );
    await ownRuntime?.close();
  };
  try {
    await Promise.all(consumers.map((consumer) => consumer.ready()));
  } catch (err) {
    await abandonStart();
    throw err;
  }
  let stopping = false;
  const health = createWorkerHealth(
    {
      consumer: allConsumers(consumers),
      readEventLog: () => runtime.store.headPosition(),
      stopping: () => stopping,
    },
    options.health,
  );
  const healthPort = options.health?.port ?? config.worker.healthPort;
  let healthServer: HealthServer | undefined;
  try {
    if (healthPort !== undefined) {
      healthServer = await startHealthServer({
        health,
        port: healthPort,
        ...(options.health?.host !== undefined && { host: options.health.host }),
        logger,
      });
    }
  } catch (err) {
    health.stop();
    await abandonStart();
    throw err;
  }
  for (const [index, { name, operator }] of clusters.entries()) {
    logger.info(
      {
        ...describeQueueBackend(config, consumers[index]!.name),
        cluster: name,
        clusterMode: operator.kind,
        jobConcurrency: config.worker.jobConcurrency,
        healthUrl: healthServer?.url,
        orphanSweepIntervalMs: config.worker.orphanSweepIntervalMs,
      },
      'worker started',
    );
  }
  // Every worker sweeps the tasks of the clusters it runs, each in its
  // cluster's queue; the sweep's conditional append makes one of the workers
  // end each orphan. A task of a cluster this worker has no credentials for is
  // left to the workers that do.
  const sweepQueues =
    config.worker.orphanSweepIntervalMs > 0
      ? new Map(clusters.map(({ name }) => [name, createBatchQueue({ config, logger, cluster: name })]))
      : undefined;
  const sweep: OrphanSweepLoop | undefined =
    sweepQueues &&
    startOrphanSweep(
      {
        listTasks: (listOptions) => runtime.store.listTasks(listOptions),
        jobState: async (task) => {
          const queue = sweepQueues.get(task.cluster ?? SINGLE_CLUSTER_NAME);
          return queue ? queue.jobState(task.taskId) : null;
        },
        append: deps.append,
        logger,
      },
      { ...options.orphanSweep, intervalMs: config.worker.orphanSweepIntervalMs },
    );

  let closing: Promise<void> | undefined;
  const close = async (graceMs: number): Promise<void> => {
    logger.info({ graceMs }, 'worker stopping: no new jobs; in-flight nodes may finish');
    stopping = true;
    shutdown.abort();
    const haltTimer = setTimeout(() => halt.abort(), graceMs);
    let forceTimer: NodeJS.Timeout | undefined;
    // Past the margin the forced close ends the wait: a graceful close that
    // never settles (a blocking fetch on a connection that will not answer)
    // must not keep the process from exiting.
    const forced = new Promise<void>((resolve) => {
      forceTimer = setTimeout(() => {
        logger.warn(
          'running jobs did not hand back in time; dropping them (they resume elsewhere after their lock expires)',
        );
        closeConsumers(true)
          .catch((err: unknown) => logger.warn({ err }, 'forced close failed'))
          .finally(resolve);
      }, graceMs + HAND_BACK_MARGIN_MS);
    });
    try {
      await Promise.race([
        (async () => {
          await sweep?.stop();
          await closeConsumers(false);
        })(),
        forced,
      ]);
    } finally {
      clearTimeout(haltTimer);
      clearTimeout(forceTimer);
      health.stop();
      await healthServer?.close();
      await Promise.all([...(sweepQueues?.values() ?? [])].map((queue) => queue.close()));
      await ownRuntime?.close();
    }
    logger.info('worker stopped');
  };

  return {
    id,
    health,
    healthUrl: healthServer?.url,
    close(closeOptions) {
      closing ??= close(closeOptions?.graceMs ?? config.worker.shutdownGraceMs);
      return closing;
    },
  };
}

/** The consumers of every cluster as the probes see one: running while all run, ready while all answer. */
function allConsumers(consumers: readonly BatchConsumer[]): WorkerHealthSources['consumer'] {
  return {
    get running() {
      return consumers.every((consumer) => consumer.running);
    },
    async check(timeoutMs) {
      const checks = await Promise.all(consumers.map((consumer) => consumer.check(timeoutMs)));
      return checks.find((check) => !check.ok) ?? { ok: true };
    },
  };
}

/** TaskFailed.error is shown to users: a stack of BullMQ internals is cut short. */
const MAX_DEAD_REASON_CHARS = 2000;

/**
 * A job that will not run again leaves its task running forever unless the
 * log says it ended: TaskFailed with the code and the last error, so every
 * stream ends. Unfenced (no run owns the task any more); a task that ended
 * meanwhile, or was never created, is left as it is.
 */
export async function endDeadTask(append: AppendEvents, dead: DeadBatchJob, logger: Logger): Promise<void> {
  try {
    await append(dead.taskId, [
      {
        type: 'TaskFailed',
        data: { error: dead.reason.slice(0, MAX_DEAD_REASON_CHARS), code: dead.code },
      },
    ]);
    logger.warn(
      { taskId: dead.taskId, code: dead.code },
      'task ended with TaskFailed: its job failed for good',
    );
  } catch (err) {
    if (err instanceof TaskAlreadyEndedError || err instanceof UnknownTaskError) return;
    throw err;
  }
}

/**
 * How the worker's runs append: several tasks to a transaction when the
 * notifier can (createAppendGroup), else one append each. A retry of
 * retryingAppend goes through the group again.
 */
function workerAppend(notifier: WorkerRuntime['notifier']): AppendEvents {
  const append: AppendEvents = (taskId, events, appendOptions) =>
    notifier.append(taskId, events, appendOptions);
  const { appendMany } = notifier;
  if (!appendMany) return append;
  return createAppendGroup({ appendMany: (batches) => appendMany.call(notifier, batches), append });
}

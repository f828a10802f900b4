import type { CordonReason, NodeOperator } from '@nodebatch/kube';
import { KubeOperationError, OperationAbortedError, validateBatchParams } from '@nodebatch/kube';
import type { BatchAction, EventReader, NewEvent, StoredEvent, TaskState } from '@nodebatch/progress';
import {
  NodebatchError,
  StaleSequenceError,
  SupersededAttemptError,
  TaskAlreadyEndedError,
  UnknownTaskError,
  backoffDelay,
  errorMessage,
  foldTask,
  loadTaskState,
  readTaskEvents,
  sleep,
} from '@nodebatch/progress';
import type { Logger } from 'pino';
import { defer, filter, retry, take, tap, timer } from 'rxjs';
import type { Observable } from 'rxjs';
import { DEFAULT_ACTION_CONCURRENCY, batchConcurrency } from './action-concurrency.js';
import { createEventBatcher } from './event-batcher.js';
import type { AppendEvents } from './event-batcher.js';
import { prepareBatch, runNodeAction } from './node-action.js';
import type { BatchPreparation, PreparedAction } from './node-action.js';
import { DEFAULT_NODE_RETRY_POLICY, retryDelayMs } from './node-retry-policy.js';
import type { NodeRetryPolicy } from './node-retry-policy.js';
import type { TaskEventFeed } from './task-events.js';

/** What the runner needs from the process: the log, the notifier's append, the cluster. */
export interface BatchTaskRunnerDeps {
  store: EventReader;
  /** Appends and notifies (Notifier.append): every event is durable before anyone is told. */
  append: AppendEvents;
  /** Where the runner hears of CancelRequested while it runs. */
  feed: TaskEventFeed;
  operator: NodeOperator;
  /** The named cluster the operator reaches (written into TaskStarted); a task of another cluster is refused. */
  cluster?: string;
  logger: Logger;
}

export interface BatchTaskRunOptions {
  taskId: string;
  /** Written into TaskStarted, so the log says which worker ran (or resumed) the task. */
  workerId: string;
  /** Aborted when the worker shuts down: no new node starts; in-flight nodes finish; the job is handed back. */
  shutdown: AbortSignal;
  /** Aborted when the shutdown grace period is over: in-flight nodes are abandoned (the next worker redoes them). */
  halt: AbortSignal;
  /** Default DEFAULT_NODE_RETRY_POLICY. */
  retry?: NodeRetryPolicy;
  /** Nodes at once when TaskCreated names no concurrency. Default DEFAULT_ACTION_CONCURRENCY. */
  concurrencyByAction?: Readonly<Record<BatchAction, number>>;
  /** See EventBatcherOptions. Defaults 0 ms (the end of the turn) and 100 events. */
  flushDelayMs?: number;
  maxBatchEvents?: number;
}

export type BatchTaskOutcome = 'finished' | 'handed-back';

/** A task's nodes are not all done but nothing stopped this run: a bug, or events appended by someone else. */
export class UnfinishedTaskError extends NodebatchError {
  constructor(taskId: string, unfinished: readonly string[]) {
    super(
      'UNFINISHED_TASK',
      `task ${taskId}: ${unfinished.length} node(s) still unfinished after the run (${unfinished
        .slice(0, 5)
        .join(', ')}${unfinished.length > 5 ? ', ...' : ''}); the job will run again and resume`,
    );
  }
}

const FINISHED_NODE_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'skipped']);

function isNodeFinished(state: TaskState, node: string): boolean {
  const status = state.nodeStates[node]?.status;
  return status !== undefined && FINISHED_NODE_STATUSES.has(status);
}

/**
 * The terminal event the log calls for now, or null while nodes remain and no
 * cancel was asked. A cancel that comes after every node finished is too late:
 * the task completed.
 */
export function decideTerminalEvent(state: TaskState): NewEvent | null {
  const { succeeded, failed, skipped } = state;
  const unfinished = state.nodes.filter((node) => !isNodeFinished(state, node));
  if (unfinished.length === 0) return { type: 'TaskCompleted', data: { succeeded, failed, skipped } };
  if (state.cancelRequest) {
    const notStarted = state.nodes.filter(
      (node) => (state.nodeStates[node]?.status ?? 'pending') === 'pending',
    );
    return { type: 'TaskCancelled', data: { succeeded, failed, skipped, notStarted } };
  }
  return null;
}

/** Delays before the cancel watch subscribes again after its feed failed. */
const CANCEL_WATCH_BACKOFF = { minDelayMs: 500, maxDelayMs: 10_000 } as const;

/**
 * Emits once when the task's log gets a CancelRequested after `after`. The
 * feed errors when the log cannot be read for a while (a database outage
 * outlasting its read retries); the watch then subscribes again, with
 * backoff, from the last event it saw, so a cancel made after the feed
 * recovered still stops the run instead of waiting for its end.
 */
export function watchForCancel(
  feed: TaskEventFeed,
  taskId: string,
  after: number,
  logger: Logger,
): Observable<StoredEvent> {
  let seen = after;
  return defer(() => feed.events$(taskId, { after: seen })).pipe(
    tap((event) => (seen = event.seq)),
    retry({
      delay: (err: unknown, failures: number) => {
        logger.warn({ err, failures }, 'lost the task event feed; watching for a cancel again');
        return timer(backoffDelay(failures - 1, CANCEL_WATCH_BACKOFF));
      },
      resetOnSuccess: true,
    }),
    filter((event) => event.type === 'CancelRequested'),
    take(1),
  );
}

/**
 * Runs (or resumes) one batch task from its log: folds the events, runs the
 * nodes not yet finished with the batch's concurrency, and appends exactly one
 * terminal event. Resuming is safe at any point because the log says what was
 * done and every node operation is idempotent; the terminal event is appended
 * with `expectedSeq`, so it is decided on the latest log and never doubled.
 */
export async function runBatchTask(
  deps: BatchTaskRunnerDeps,
  options: BatchTaskRunOptions,
): Promise<BatchTaskOutcome> {
  const { store, append, feed, operator, cluster } = deps;
  const { taskId, workerId, shutdown, halt } = options;
  const retry = options.retry ?? DEFAULT_NODE_RETRY_POLICY;
  const logger = deps.logger.child({ taskId });
  const startedAt = Date.now();
  let reason: CordonReason | undefined;

  let initial: TaskState;
  let requestedConcurrency: number | undefined;
  try {
    const events = await readTaskEvents(store, taskId);
    initial = foldTask(taskId, events);
    const created = events.find((event) => event.type === 'TaskCreated');
    requestedConcurrency = created?.type === 'TaskCreated' ? created.data.concurrency : undefined;
    if (created?.type === 'TaskCreated' && created.data.reason !== undefined) {
      reason = { reason: created.data.reason, by: created.data.userId };
    }
  } catch (err) {
    if (err instanceof UnknownTaskError) {
      // No TaskCreated: there is nothing to run and nowhere to record a failure.
      logger.error({ err }, 'job names a task that does not exist; job dropped');
      return 'finished';
    }
    throw err;
  }
  if (initial.outcome) {
    logger.info({ outcome: initial.outcome.type }, 'task already ended; nothing to do');
    return 'finished';
  }
  const action = initial.action;
  if (!action) throw new UnknownTaskError(taskId);

  // The fence of this run (invariant 9): every append below carries it, and once a later
  // run has appended its TaskStarted the store refuses them with SupersededAttemptError.
  const attempt = initial.workerAttempts + 1;
  const superseded = new AbortController();
  const fencedAppend: AppendEvents = async (id, events, appendOptions) => {
    try {
      return await append(id, events, { ...appendOptions, fence: attempt });
    } catch (err) {
      if (err instanceof SupersededAttemptError && !superseded.signal.aborted) {
        // Once: every later append of this run fails the same way.
        logger.warn(
          { attempt, currentAttempt: err.currentAttempt, workerId },
          'this run lost the task: a later attempt started (its job lock expired and another worker took it over); stopping its node operations',
        );
        superseded.abort(err);
      }
      throw err;
    }
  };

  /** Appends the terminal event decided on the latest log; retried when someone appended in between. */
  const end = async (decide: (state: TaskState) => NewEvent | null): Promise<BatchTaskOutcome> => {
    for (;;) {
      const state = await loadTaskState(store, taskId);
      if (state.outcome) {
        logger.info({ outcome: state.outcome.type }, 'task ended by another worker');
        return 'finished';
      }
      const terminal = decide(state);
      if (!terminal) {
        const unfinished = state.nodes.filter((node) => !isNodeFinished(state, node));
        if (shutdown.aborted || halt.aborted) {
          logger.info(
            { unfinished: unfinished.length, durationMs: Date.now() - startedAt },
            'task handed back',
          );
          return 'handed-back';
        }
        throw new UnfinishedTaskError(taskId, unfinished);
      }
      try {
        await fencedAppend(taskId, [terminal], { expectedSeq: state.lastSeq });
      } catch (err) {
        if (err instanceof StaleSequenceError) continue;
        if (err instanceof TaskAlreadyEndedError) return 'finished';
        if (err instanceof SupersededAttemptError) return 'finished';
        throw err;
      }
      // A cancelled batch of thousands of nodes would put every name in the line: count them instead.
      const summary =
        terminal.type === 'TaskCancelled'
          ? { ...terminal.data, notStarted: terminal.data.notStarted.length }
          : terminal.data;
      logger.info({ outcome: terminal.type, ...summary, durationMs: Date.now() - startedAt }, 'task ended');
      return 'finished';
    }
  };

  if (cluster !== undefined && initial.cluster !== null && initial.cluster !== cluster) {
    // Nodes of the same name may exist in both clusters: a job that reached the wrong queue acts on none.
    const error = `task ${taskId} is for cluster "${initial.cluster}" but reached the queue of cluster "${cluster}"; nothing was done`;
    return end(() => ({ type: 'TaskFailed', data: { error, code: 'WRONG_CLUSTER' } }));
  }

  let prepared: PreparedAction;
  try {
    prepared = { action, params: validateBatchParams(action, initial.params) } as PreparedAction;
  } catch (err) {
    const code = err instanceof NodebatchError ? err.code : 'INVALID_PARAMS';
    return end(() => ({ type: 'TaskFailed', data: { error: errorMessage(err), code } }));
  }

  const cancel = new AbortController();
  if (initial.cancelRequest) cancel.abort();
  const cancelWatch = watchForCancel(feed, taskId, initial.lastSeq, logger).subscribe(() => cancel.abort());

  const batcher = createEventBatcher({
    taskId,
    append: fencedAppend,
    ...(options.flushDelayMs !== undefined && { flushDelayMs: options.flushDelayMs }),
    ...(options.maxBatchEvents !== undefined && { maxBatchEvents: options.maxBatchEvents }),
  });
  const emit = (...events: NewEvent[]): void => {
    // After an append failure nothing more is recorded; the failure surfaces at the final flush.
    if (!batcher.failure) batcher.push(...events);
  };

  try {
    if (cancel.signal.aborted) return await end(decideTerminalEvent);

    // TaskStarted first and alone: once it committed no earlier run can append, so the log read
    // after it says exactly which nodes are left (a stale run may have finished some meanwhile).
    try {
      await fencedAppend(taskId, [
        {
          type: 'TaskStarted',
          data: {
            workerId,
            attempt,
            clusterMode: operator.kind,
            ...(cluster === undefined ? {} : { cluster }),
          },
        },
      ]);
    } catch (err) {
      if (err instanceof SupersededAttemptError) return 'finished';
      if (err instanceof TaskAlreadyEndedError) return 'finished';
      throw err;
    }
    const current = await loadTaskState(store, taskId);
    if (current.outcome) return await end(decideTerminalEvent);
    if (current.cancelRequest) cancel.abort();
    const remaining = current.nodes.filter((node) => !isNodeFinished(current, node));
    const concurrency = batchConcurrency(
      action,
      requestedConcurrency,
      options.concurrencyByAction ?? DEFAULT_ACTION_CONCURRENCY,
    );
    logger.info(
      {
        action,
        nodes: initial.total,
        remaining: remaining.length,
        concurrency,
        attempt,
        workerId,
      },
      'task started',
    );

    const nodeSignal = AbortSignal.any([cancel.signal, halt, superseded.signal]);
    let preparation: BatchPreparation;
    try {
      preparation = await prepareBatch(operator, prepared, remaining, { signal: nodeSignal, reason, logger });
    } catch (err) {
      if (halt.aborted || cancel.signal.aborted || superseded.signal.aborted) {
        await batcher.flush();
        return await end(decideTerminalEvent);
      }
      // Fails the task once (a missing copy source), not each node alike.
      logger.warn({ err }, 'batch preparation failed; the task fails');
      await batcher.flush();
      const code = err instanceof NodebatchError ? err.code : 'PREPARATION_FAILED';
      return await end(() => ({ type: 'TaskFailed', data: { error: errorMessage(err), code } }));
    }
    const runNode = async (node: string): Promise<void> => {
      let nodeAttempt = (current.nodeStates[node]?.attempts ?? 0) + 1;
      emit({ type: 'NodeStarted', data: { node, attempt: nodeAttempt } });
      for (let triesHere = 1; ; triesHere++) {
        try {
          const result = await runNodeAction(operator, prepared, node, {
            signal: nodeSignal,
            reason,
            preparation,
            onProgress: (progress) => emit({ type: 'NodeProgress', data: { node, ...progress } }),
          });
          emit({ type: 'NodeSucceeded', data: { node, ...result } });
          return;
        } catch (err) {
          // Abandoned at the end of the grace period, or the run lost the task: no event,
          // the next (or the current) run redoes the node.
          if (halt.aborted || superseded.signal.aborted) return;
          if (cancel.signal.aborted && err instanceof OperationAbortedError) {
            emit({
              type: 'NodeFailed',
              data: {
                node,
                error: `${err.message}: the task was cancelled`,
                code: err.code,
                retryable: false,
              },
            });
            return;
          }
          const retryable = err instanceof KubeOperationError && err.retryable;
          if (retryable && triesHere < retry.maxAttempts && !cancel.signal.aborted) {
            const delayMs = retryDelayMs(retry, triesHere);
            emit({
              type: 'NodeRetrying',
              data: { node, attempt: nodeAttempt, error: errorMessage(err), delayMs },
            });
            // An abort ends the wait early; the checks below decide what follows.
            await sleep(delayMs, nodeSignal).catch(() => undefined);
            if (halt.aborted || superseded.signal.aborted) return;
            if (!cancel.signal.aborted) {
              nodeAttempt += 1;
              emit({ type: 'NodeStarted', data: { node, attempt: nodeAttempt } });
              continue;
            }
          }
          const code = err instanceof NodebatchError ? err.code : undefined;
          emit({
            type: 'NodeFailed',
            data: { node, error: errorMessage(err), retryable, ...(code !== undefined && { code }) },
          });
          logger.warn({ node, attempt: nodeAttempt, err }, 'node failed');
          return;
        }
      }
    };

    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < remaining.length && !cancel.signal.aborted && !shutdown.aborted && !batcher.failure) {
        const node = remaining[next++] as string;
        await runNode(node);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, remaining.length) }, lane));
    try {
      await batcher.flush();
    } catch (err) {
      // Logged once by fencedAppend; the new run owns the task and this job's lock is gone.
      if (err instanceof SupersededAttemptError) return 'finished';
      throw err;
    }
    return await end(decideTerminalEvent);
  } finally {
    cancelWatch.unsubscribe();
  }
}

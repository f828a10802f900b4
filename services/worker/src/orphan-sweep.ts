import type { ListTasksOptions, TaskSummary } from '@nodebatch/event-store';
import { StaleSequenceError, TaskAlreadyEndedError, realScheduler } from '@nodebatch/progress';
import type { ScheduledTask, Scheduler } from '@nodebatch/progress';
import { FINISHED_JOB_STATES } from '@nodebatch/runtime';
import type { BatchJobState } from '@nodebatch/runtime';
import type { Logger } from 'pino';
import type { AppendEvents } from './event-batcher.js';

/** What the sweep reads and writes: the task listing, the queue's job states and the notifier's append. */
export interface OrphanSweepDeps {
  /** PostgresEventStore.listTasks fits. */
  listTasks(options: ListTasksOptions): Promise<TaskSummary[]>;
  /**
   * The state of the task's job in its cluster's queue (BatchQueue.jobState),
   * or null when the task's cluster is not one this sweeper looks after.
   */
  jobState(task: TaskSummary): Promise<BatchJobState | null>;
  append: AppendEvents;
  logger: Logger;
}

export interface OrphanSweepOptions {
  /**
   * Only tasks without an event for this long are looked at, in ms. Default
   * 60000. A guard against the moments when a task looks running and its job
   * is not there yet, such as a cancel that arrives between the gateway's
   * TaskCreated and its enqueue.
   */
  minIdleMs?: number;
  /** Clock for minIdleMs. Default `() => new Date()`. */
  now?: () => Date;
}

interface OrphanSweepResult {
  /** Running or cancelling tasks looked at (idle long enough). */
  checked: number;
  /** Tasks this sweep ended with TaskFailed ORPHANED. */
  ended: string[];
}

/** TaskFailed.code of a task the sweep ended. */
export const ORPHANED_CODE = 'ORPHANED';
const DEFAULT_MIN_IDLE_MS = 60_000;
const PAGE_SIZE = 500;
const SWEPT_STATUSES = ['running', 'cancelling'] as const;

/**
 * One pass: every task that is running or cancelling, idle for `minIdleMs`,
 * and whose job the queue no longer has or will not run again (completed,
 * failed, gone) is ended with TaskFailed ORPHANED and the reason, so its
 * streams end. The append is conditional on the seq the listing showed: when
 * several workers sweep at once, the first append wins, the others find the
 * log moved on (StaleSequenceError or TaskAlreadyEndedError) and leave it;
 * a task that got an event since it was listed is alive and left too.
 *
 * A task's job is looked up in the queue of the task's cluster (deps.jobState);
 * a task of a cluster this sweeper does not serve is left to the workers that do.
 */
export async function sweepOrphanedTasks(
  deps: OrphanSweepDeps,
  options: OrphanSweepOptions = {},
): Promise<OrphanSweepResult> {
  const minIdleMs = options.minIdleMs ?? DEFAULT_MIN_IDLE_MS;
  const idleBefore = (options.now ?? (() => new Date()))().getTime() - minIdleMs;
  const result: OrphanSweepResult = { checked: 0, ended: [] };
  for (const status of SWEPT_STATUSES) {
    let before: TaskSummary | undefined;
    for (;;) {
      const page = await deps.listTasks({ status, limit: PAGE_SIZE, ...(before && { before }) });
      for (const task of page) {
        if (Date.parse(task.updatedAt) > idleBefore) continue;
        result.checked += 1;
        if (await endIfOrphaned(deps, task)) result.ended.push(task.taskId);
      }
      if (page.length < PAGE_SIZE) break;
      before = page.at(-1);
    }
  }
  return result;
}

async function endIfOrphaned(deps: OrphanSweepDeps, task: TaskSummary): Promise<boolean> {
  const state = await deps.jobState(task);
  if (state === null || !FINISHED_JOB_STATES.has(state)) return false;
  const job = state === 'unknown' ? 'is not in the queue (removed, or the queue was flushed)' : `is ${state}`;
  const error = `task was ${task.status} but its job ${job}: no worker will run it again`;
  try {
    await deps.append(task.taskId, [{ type: 'TaskFailed', data: { error, code: ORPHANED_CODE } }], {
      expectedSeq: task.lastSeq,
    });
  } catch (err) {
    // Another sweeper ended it first, or the task moved on: either way it is not ours to end.
    if (err instanceof StaleSequenceError || err instanceof TaskAlreadyEndedError) return false;
    throw err;
  }
  deps.logger.warn(
    { taskId: task.taskId, status: task.status, jobState: state, code: ORPHANED_CODE },
    'task ended with TaskFailed: it had no live job behind it',
  );
  return true;
}

interface OrphanSweepLoopOptions extends OrphanSweepOptions {
  /** Time between two sweeps, in ms; the first runs after one interval. */
  intervalMs: number;
  /** Default realScheduler. */
  scheduler?: Scheduler;
}

export interface OrphanSweepLoop {
  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void>;
}

/** Runs {@link sweepOrphanedTasks} every `intervalMs`; a failure is logged once per streak. */
export function startOrphanSweep(deps: OrphanSweepDeps, options: OrphanSweepLoopOptions): OrphanSweepLoop {
  const scheduler = options.scheduler ?? realScheduler;
  const logger = deps.logger.child({ job: 'orphan-sweep' });
  let stopped = false;
  let failing = false;
  let timer: ScheduledTask | undefined;
  let running: Promise<void> = Promise.resolve();

  const run = async (): Promise<void> => {
    try {
      await sweepOrphanedTasks({ ...deps, logger }, options);
      if (failing) logger.info('orphan sweep works again');
      failing = false;
    } catch (err) {
      if (!failing) logger.warn({ err }, 'orphan sweep failed; retrying every interval');
      failing = true;
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = scheduler.schedule(() => {
      running = run().then(schedule);
    }, options.intervalMs);
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      timer?.cancel();
      await running;
    },
  };
}

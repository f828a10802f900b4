import type { BatchAction, StoredEvent } from '@nodebatch/progress';

/** Same names as the reducer's TaskStatus in @nodebatch/progress. */
export type TaskSummaryStatus = 'pending' | 'running' | 'cancelling' | 'completed' | 'cancelled' | 'failed';

export const TASK_SUMMARY_STATUSES = [
  'pending',
  'running',
  'cancelling',
  'completed',
  'cancelled',
  'failed',
] as const satisfies readonly TaskSummaryStatus[];

/**
 * One row of the task listing: the projection the store keeps in the same
 * transaction as each append, so that listing a user's tasks by status is one
 * indexed query. The full state of one task is the fold of its events
 * (reduceTask in @nodebatch/progress); this summary only counts what the
 * listing shows.
 */
export interface TaskSummary {
  taskId: string;
  userId: string;
  action: BatchAction;
  /** The named cluster TaskCreated records; null when it names none (tasks from before clusters were recorded). */
  cluster: string | null;
  status: TaskSummaryStatus;
  /** Number of distinct nodes named by TaskCreated. */
  total: number;
  /** Nodes that ended: succeeded + failed + skipped, never above total. */
  done: number;
  succeeded: number;
  failed: number;
  skipped: number;
  lastSeq: number;
  /** ISO-8601 times of TaskCreated, the last event, and the terminal event (null while running). */
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

/**
 * Applies events (already validated, in seq order, the first being TaskCreated
 * when `summary` is null) to a task's summary. Like the fold, a node's end is
 * counted once and only for a node the task has: `countableEnds` holds the
 * nodes of the task that had not ended before these events (the store looks
 * them up for the batch's node end events); each counted end removes its node.
 */
export function applyToSummary(
  summary: TaskSummary | null,
  events: readonly StoredEvent[],
  countableEnds: Set<string>,
): TaskSummary {
  let current = summary;
  for (const event of events) {
    if (event.type === 'TaskCreated') {
      current = {
        taskId: event.taskId,
        userId: event.data.userId,
        action: event.data.action,
        cluster: event.data.cluster ?? null,
        status: 'pending',
        total: new Set(event.data.nodes).size,
        done: 0,
        succeeded: 0,
        failed: 0,
        skipped: 0,
        lastSeq: event.seq,
        createdAt: event.time,
        updatedAt: event.time,
        finishedAt: null,
      };
      continue;
    }
    if (current === null) throw new Error(`summary of task ${event.taskId} applied before its TaskCreated`);
    current = applyOne(current, event, countableEnds);
  }
  if (current === null) throw new Error('applyToSummary needs a summary or events');
  return current;
}

function applyOne(summary: TaskSummary, event: StoredEvent, countableEnds: Set<string>): TaskSummary {
  const next: TaskSummary = { ...summary, lastSeq: event.seq, updatedAt: event.time };
  const started = summary.status === 'pending' ? 'running' : summary.status;
  switch (event.type) {
    case 'TaskCreated':
      return next;
    case 'TaskStarted':
    case 'NodeStarted':
    case 'NodeProgress':
    case 'NodeRetrying':
      return { ...next, status: started };
    case 'NodeSucceeded':
    case 'NodeFailed':
    case 'NodeSkipped': {
      if (!countableEnds.delete(event.data.node) || summary.done >= summary.total)
        return { ...next, status: started };
      const key =
        event.type === 'NodeSucceeded' ? 'succeeded' : event.type === 'NodeFailed' ? 'failed' : 'skipped';
      return { ...next, status: started, done: summary.done + 1, [key]: summary[key] + 1 };
    }
    case 'CancelRequested':
      return { ...next, status: 'cancelling' };
    case 'TaskCompleted':
      return { ...next, status: 'completed', finishedAt: event.time };
    case 'TaskCancelled':
      return { ...next, status: 'cancelled', finishedAt: event.time };
    case 'TaskFailed':
      return { ...next, status: 'failed', finishedAt: event.time };
  }
}

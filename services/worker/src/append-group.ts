import type { NotifiedTaskBatch, StoredEvent } from '@nodebatch/progress';
import type { AppendEvents } from './event-batcher.js';

/** Appends to several tasks in one transaction: the notifier's `appendMany`. */
export type AppendMany = (batches: readonly NotifiedTaskBatch[]) => Promise<StoredEvent[][]>;

export interface AppendGroupOptions {
  /** One transaction for several tasks. */
  appendMany: AppendMany;
  /** One task alone: a group of one, and each member again when a group failed. */
  append: AppendEvents;
  /** The most tasks in one transaction. Default 32. */
  maxTasks?: number;
}

interface Waiting {
  batch: NotifiedTaskBatch;
  resolve: (stored: StoredEvent[]) => void;
  reject: (err: unknown) => void;
}

/**
 * The appends of a worker's running tasks, several tasks to a transaction.
 *
 * Each task's event batcher already keeps one append in flight and gathers
 * what arrives meanwhile; with several tasks running, that still made one
 * transaction per task per round, each with its own round trips, commit
 * and notification. Here appends that arrive while a group is in flight
 * wait for it and go together, one task's batch each, in the next
 * transaction (group commit across tasks); an append that finds nothing in
 * flight goes at the end of the current turn, with whatever else arrived in it.
 *
 * A group is all or nothing, so one task's refusal (a fenced run, a stale
 * seq) would fail the others: when a group fails, each of its appends is
 * tried again alone and gets its own answer. Nothing is written twice: a
 * failed group wrote nothing, and an append's idempotency key goes with it.
 */
export function createAppendGroup(options: AppendGroupOptions): AppendEvents {
  const maxTasks = options.maxTasks ?? 32;
  let waiting: Waiting[] = [];
  let inFlight = false;
  let scheduled = false;

  /** The next group: the first waiting append of each task, in arrival order, so each task's order holds. */
  const takeGroup = (): Waiting[] => {
    const group: Waiting[] = [];
    const tasks = new Set<string>();
    const rest: Waiting[] = [];
    for (const entry of waiting) {
      if (group.length < maxTasks && !tasks.has(entry.batch.taskId)) {
        tasks.add(entry.batch.taskId);
        group.push(entry);
      } else {
        rest.push(entry);
      }
    }
    waiting = rest;
    return group;
  };

  const alone = async (entry: Waiting): Promise<void> => {
    try {
      const { taskId, events, options: appendOptions } = entry.batch;
      entry.resolve(await options.append(taskId, events, appendOptions));
    } catch (err) {
      entry.reject(err);
    }
  };

  const run = async (): Promise<void> => {
    scheduled = false;
    if (inFlight || waiting.length === 0) return;
    inFlight = true;
    const group = takeGroup();
    try {
      if (group.length === 1) {
        await alone(group[0]!);
      } else {
        let stored: StoredEvent[][] | undefined;
        try {
          stored = await options.appendMany(group.map((entry) => entry.batch));
        } catch {
          // Which task was refused, or whether the database went away, each append learns alone.
          await Promise.all(group.map(alone));
        }
        if (stored) for (const [index, entry] of group.entries()) entry.resolve(stored[index]!);
      }
    } finally {
      inFlight = false;
    }
    // What arrived meanwhile has waited for a whole transaction already: it goes now, together.
    if (waiting.length > 0) void run();
  };

  return (taskId, events, appendOptions) =>
    new Promise<StoredEvent[]>((resolve, reject) => {
      waiting.push({
        batch: { taskId, events, ...(appendOptions === undefined ? {} : { options: appendOptions }) },
        resolve,
        reject,
      });
      if (inFlight || scheduled) return;
      scheduled = true;
      setImmediate(() => void run());
    });
}

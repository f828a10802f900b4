import type { StoredEvent } from './events.js';
import { isTerminalType } from './events.js';
import { foldTask } from './reducer.js';
import type { EventReader } from './store.js';
import type { TaskState } from './task-state.js';

/** Options of {@link readTaskEvents}. */
export interface ReadTaskEventsOptions {
  /** Events with a seq greater than this. Default 0. */
  after?: number;
  /** Events per read. Default 1000 (the stores cap a read at their page size anyway). */
  pageSize?: number;
}

/**
 * Every event of a task after `after`, reading page after page. It stops at
 * an empty page or at the terminal event, never at a short page: a store may
 * return fewer events than asked for (its page size) while more exist.
 * Rejects with UnknownTaskError for a task that was never created.
 */
export async function readTaskEvents(
  reader: Pick<EventReader, 'readTask'>,
  taskId: string,
  options: ReadTaskEventsOptions = {},
): Promise<StoredEvent[]> {
  const pageSize = options.pageSize ?? 1000;
  const events: StoredEvent[] = [];
  let after = options.after ?? 0;
  for (;;) {
    const page = await reader.readTask(taskId, { after, limit: pageSize });
    const last = page.at(-1);
    if (last === undefined) return events;
    for (const event of page) events.push(event);
    if (isTerminalType(last.type)) return events;
    after = last.seq;
  }
}

/** A task's current state: the fold of all its events, read from the store (invariant 1, docs/invariants.md). */
export async function loadTaskState(
  reader: Pick<EventReader, 'readTask'>,
  taskId: string,
): Promise<TaskState> {
  return foldTask(taskId, await readTaskEvents(reader, taskId));
}

import type { StoredEvent } from './events.js';

/**
 * Each task's events, in the order given, tasks in the order they first
 * appear: how an append or a read of several tasks is announced task by
 * task. `include` leaves out the tasks it refuses (those nobody watches).
 */
export function eventsByTask(
  events: readonly StoredEvent[],
  include: (taskId: string) => boolean = () => true,
): Map<string, StoredEvent[]> {
  const byTask = new Map<string, StoredEvent[]>();
  for (const event of events) {
    if (!include(event.taskId)) continue;
    const list = byTask.get(event.taskId);
    if (list) list.push(event);
    else byTask.set(event.taskId, [event]);
  }
  return byTask;
}

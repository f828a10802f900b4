import { SupersededAttemptError } from './errors.js';
import type { NewEvent } from './events.js';

/**
 * Invariant 9, one writer per task at a time: the rule every EventStore
 * applies to an append that carries a fence (AppendOptions.fence), inside
 * the append's serialization of the task so that two runs cannot both pass.
 *
 * `currentAttempt` is the highest TaskStarted attempt in the log (0 when none).
 * - An append holding the TaskStarted of its own attempt starts that run: it
 *   is refused when that attempt or a later one already started (two workers
 *   that took the same job cannot both start it).
 * - Any other fenced append is refused once a later attempt started.
 * Returns the task's attempt after the append (a TaskStarted raises it,
 * fenced or not).
 */
export function applyFence(
  taskId: string,
  currentAttempt: number,
  fence: number | undefined,
  events: readonly Pick<NewEvent, 'type' | 'data'>[],
): number {
  let started = 0;
  for (const event of events) {
    if (event.type === 'TaskStarted')
      started = Math.max(started, (event.data as { attempt: number }).attempt);
  }
  if (fence !== undefined) {
    if (started === fence ? currentAttempt >= fence : currentAttempt > fence) {
      throw new SupersededAttemptError(taskId, fence, currentAttempt);
    }
  }
  return Math.max(currentAttempt, started);
}

import type { NewEvent, StoredEvent } from '../events.js';
import { EventDataSchemas } from '../events.js';

/**
 * Turns new events into stored ones as the store would (seq 1, 2, 3 …,
 * positions, times a second apart, data through its schema so defaults apply):
 * the "given" of reducer specs, without a store.
 */
export function storedEvents(taskId: string, events: readonly NewEvent[], firstSeq = 1): StoredEvent[] {
  return events.map((event, index) => {
    const seq = firstSeq + index;
    return {
      taskId,
      seq,
      position: 1000 + seq,
      type: event.type,
      time: event.time ?? timeOf(seq),
      data: EventDataSchemas[event.type].parse(event.data),
    } as StoredEvent;
  });
}

/** The time storedEvents gives to the event with this seq. */
export function timeOf(seq: number): string {
  return new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString();
}

/** Shorthands for writing event sequences in specs. */
export const ev = {
  created: (nodes: string[], userId = 'alice', action: 'cordon' | 'drain' = 'drain'): NewEvent => ({
    type: 'TaskCreated',
    data: { userId, action, nodes, params: {} },
  }),
  started: (attempt = 1): NewEvent => ({ type: 'TaskStarted', data: { attempt } }),
  nodeStarted: (node: string, attempt = 1): NewEvent => ({ type: 'NodeStarted', data: { node, attempt } }),
  nodeProgress: (node: string, done: number, total: number, message?: string): NewEvent => ({
    type: 'NodeProgress',
    data: message === undefined ? { node, done, total } : { node, done, total, message },
  }),
  nodeRetrying: (node: string, attempt: number, error = 'timeout'): NewEvent => ({
    type: 'NodeRetrying',
    data: { node, attempt, error, delayMs: 100 },
  }),
  nodeSucceeded: (node: string): NewEvent => ({ type: 'NodeSucceeded', data: { node } }),
  nodeFailed: (node: string, error = 'eviction blocked', retryable = false): NewEvent => ({
    type: 'NodeFailed',
    data: { node, error, retryable },
  }),
  nodeSkipped: (node: string, reason = 'cancelled'): NewEvent => ({
    type: 'NodeSkipped',
    data: { node, reason },
  }),
  cancelRequested: (by = 'alice'): NewEvent => ({ type: 'CancelRequested', data: { by } }),
  completed: (succeeded: number, failed: number, skipped = 0): NewEvent => ({
    type: 'TaskCompleted',
    data: { succeeded, failed, skipped },
  }),
  cancelled: (succeeded: number, failed: number, skipped: number, notStarted: string[] = []): NewEvent => ({
    type: 'TaskCancelled',
    data: { succeeded, failed, skipped, notStarted },
  }),
  failed: (error = 'worker lost'): NewEvent => ({ type: 'TaskFailed', data: { error } }),
};

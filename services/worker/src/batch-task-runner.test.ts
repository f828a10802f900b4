import type { NewEvent, StoredEvent } from '@nodebatch/progress';
import { foldTask } from '@nodebatch/progress';
import { describe, expect, it } from 'vitest';
import { decideTerminalEvent } from './batch-task-runner.js';

/** Given these events (seq and time filled in), the state they fold to. */
function given(...events: NewEvent[]) {
  const stored = events.map(
    (event, index) =>
      ({
        ...event,
        taskId: 't',
        seq: index + 1,
        position: index + 1,
        time: new Date(0).toISOString(),
      }) as StoredEvent,
  );
  return foldTask('t', stored);
}

const created: NewEvent = {
  type: 'TaskCreated',
  data: { userId: 'u', action: 'drain', nodes: ['a', 'b', 'c'], params: {} },
};
const started = (node: string): NewEvent => ({ type: 'NodeStarted', data: { node, attempt: 1 } });
const succeeded = (node: string): NewEvent => ({ type: 'NodeSucceeded', data: { node } });
const failed = (node: string): NewEvent => ({
  type: 'NodeFailed',
  data: { node, error: 'boom', code: 'X', retryable: false },
});
const cancel: NewEvent = { type: 'CancelRequested', data: { by: 'u' } };

describe('decideTerminalEvent', () => {
  it('completes when every node ended, counting failures', () => {
    const state = given(
      created,
      started('a'),
      succeeded('a'),
      started('b'),
      failed('b'),
      started('c'),
      succeeded('c'),
    );
    expect(decideTerminalEvent(state)).toEqual({
      type: 'TaskCompleted',
      data: { succeeded: 2, failed: 1, skipped: 0 },
    });
  });

  it('waits while nodes remain and nobody cancelled', () => {
    expect(decideTerminalEvent(given(created, started('a'), succeeded('a'), started('b')))).toBeNull();
  });

  it('cancels with the nodes never started when a cancel was asked', () => {
    const state = given(created, started('a'), succeeded('a'), started('b'), cancel);
    expect(decideTerminalEvent(state)).toEqual({
      type: 'TaskCancelled',
      data: { succeeded: 1, failed: 0, skipped: 0, notStarted: ['c'] },
    });
  });

  it('completes when the cancel came after every node ended', () => {
    const state = given(created, succeeded('a'), succeeded('b'), succeeded('c'), cancel);
    expect(decideTerminalEvent(state)?.type).toBe('TaskCompleted');
  });
});

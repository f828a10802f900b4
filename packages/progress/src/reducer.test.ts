import { describe, expect, it } from 'vitest';
import type { NewEvent, StoredEvent } from './events.js';
import { foldTask, reduceTask } from './reducer.js';
import { initialTaskState, type TaskState } from './task-state.js';
import { ev, storedEvents, timeOf } from './testing/stored-events.js';

const TASK = 'task-1';

/** Decider-style spec: given these events (seq 1, 2, …), then the state. */
function given(...events: NewEvent[]): TaskState {
  return foldTask(TASK, storedEvents(TASK, events));
}

describe('reduceTask: given events, then state', () => {
  it('starts empty', () => {
    const state = initialTaskState(TASK);
    expect(state).toMatchObject({
      taskId: TASK,
      status: 'pending',
      total: 0,
      done: 0,
      percent: 0,
      lastSeq: 0,
    });
    expect(state.outcome).toBeNull();
  });

  it('TaskCreated: pending, nodes pending, total counted once per node', () => {
    const state = given(ev.created(['n1', 'n2', 'n2', 'n3']));
    expect(state).toMatchObject({
      status: 'pending',
      userId: 'alice',
      action: 'drain',
      nodes: ['n1', 'n2', 'n3'],
      total: 3,
      done: 0,
      createdAt: timeOf(1),
      lastSeq: 1,
      updatedAt: timeOf(1),
    });
    expect(state.nodeStates['n2']).toMatchObject({ status: 'pending', attempts: 0, progress: null });
  });

  it('TaskStarted: running with startedAt; a resumed worker keeps the first start', () => {
    const state = given(ev.created(['n1']), ev.started(), ev.started(2));
    expect(state).toMatchObject({ status: 'running', startedAt: timeOf(2), workerAttempts: 2 });
  });

  it('NodeStarted and NodeProgress: node running, in flight, with its last progress', () => {
    const state = given(
      ev.created(['n1', 'n2']),
      ev.started(),
      ev.nodeStarted('n1'),
      ev.nodeProgress('n1', 2, 5, 'evicting pods'),
      ev.nodeProgress('n1', 3, 5),
    );
    expect(state.nodesInFlight).toEqual(['n1']);
    expect(state.nodeStates['n1']).toMatchObject({
      status: 'running',
      attempts: 1,
      startedAt: timeOf(3),
      progress: { done: 3, total: 5, message: null },
    });
    expect(state.percent).toBe(0);
  });

  it('NodeRetrying: retrying, still in flight, error and attempts kept', () => {
    const state = given(
      ev.created(['n1']),
      ev.nodeStarted('n1'),
      ev.nodeRetrying('n1', 1, 'api timeout'),
      ev.nodeStarted('n1', 2),
    );
    expect(state.nodeStates['n1']).toMatchObject({ status: 'running', attempts: 2, error: 'api timeout' });
    expect(state.nodesInFlight).toEqual(['n1']);
    const retrying = given(ev.created(['n1']), ev.nodeStarted('n1'), ev.nodeRetrying('n1', 1));
    expect(retrying.nodeStates['n1']?.status).toBe('retrying');
    expect(retrying.nodesInFlight).toEqual(['n1']);
  });

  it('node outcomes: counts, lists with errors, percent', () => {
    const state = given(
      ev.created(['n1', 'n2', 'n3', 'n4']),
      ev.started(),
      ev.nodeStarted('n1'),
      ev.nodeStarted('n2'),
      ev.nodeSucceeded('n1'),
      ev.nodeFailed('n2', 'PodDisruptionBudget blocks eviction', true),
      ev.nodeSkipped('n3', 'not ready'),
    );
    expect(state).toMatchObject({
      done: 3,
      succeeded: 1,
      failed: 1,
      skipped: 1,
      succeededNodes: ['n1'],
      skippedNodes: ['n3'],
      nodesInFlight: [],
      percent: 75,
    });
    expect(state.failedNodes).toEqual([
      { node: 'n2', error: 'PodDisruptionBudget blocks eviction', code: null, retryable: true },
    ]);
    expect(state.nodeStates['n3']).toMatchObject({
      status: 'skipped',
      message: 'not ready',
      finishedAt: timeOf(7),
    });
  });

  it('percent rounds down so 100 means every node is done', () => {
    const nodes = ['a', 'b', 'c'];
    expect(given(ev.created(nodes), ev.nodeSucceeded('a')).percent).toBe(33.33);
    expect(given(ev.created(nodes), ev.nodeSucceeded('a'), ev.nodeSucceeded('b')).percent).toBe(66.66);
    expect(given(ev.created(nodes), ...nodes.map((n) => ev.nodeSucceeded(n))).percent).toBe(100);
  });

  it('a node started again after it ended (a resumed worker) is not counted twice', () => {
    const state = given(
      ev.created(['n1', 'n2']),
      ev.started(),
      ev.nodeStarted('n1'),
      ev.nodeSucceeded('n1'),
      ev.started(2),
      ev.nodeStarted('n1'),
      ev.nodeProgress('n1', 1, 1),
      ev.nodeSucceeded('n1'),
      ev.nodeFailed('n1'),
    );
    expect(state).toMatchObject({
      done: 1,
      succeeded: 1,
      failed: 0,
      succeededNodes: ['n1'],
      nodesInFlight: [],
    });
    expect(state.nodeStates['n1']).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(state.percent).toBe(50);
  });

  it('events for nodes the task does not have are ignored', () => {
    const state = given(ev.created(['n1']), ev.nodeStarted('other'), ev.nodeSucceeded('other'));
    expect(state).toMatchObject({ done: 0, total: 1, nodesInFlight: [], lastSeq: 3 });
    expect(Object.keys(state.nodeStates)).toEqual(['n1']);
  });

  it('a node named like an Object.prototype member is a node like any other', () => {
    const state = given(
      ev.created(['constructor']),
      ev.nodeSucceeded('toString'),
      ev.nodeSucceeded('constructor'),
    );
    expect(state).toMatchObject({ done: 1, succeededNodes: ['constructor'] });
  });

  it('CancelRequested: cancelling, first request kept; TaskCancelled ends it', () => {
    const cancelling = given(
      ev.created(['n1', 'n2']),
      ev.started(),
      ev.nodeStarted('n1'),
      ev.cancelRequested('bob'),
      ev.cancelRequested('carol'),
    );
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelRequest).toEqual({ by: 'bob', reason: null, time: timeOf(4) });
    const cancelled = given(
      ev.created(['n1', 'n2']),
      ev.started(),
      ev.nodeStarted('n1'),
      ev.cancelRequested('bob'),
      ev.nodeSucceeded('n1'),
      ev.cancelled(1, 0, 0, ['n2']),
    );
    expect(cancelled).toMatchObject({ status: 'cancelled', finishedAt: timeOf(6), done: 1 });
    expect(cancelled.outcome).toEqual({
      type: 'TaskCancelled',
      seq: 6,
      time: timeOf(6),
      data: { succeeded: 1, failed: 0, skipped: 0, notStarted: ['n2'] },
    });
  });

  it('a cancel before the worker starts stays cancelling when it starts', () => {
    const state = given(ev.created(['n1']), ev.cancelRequested(), ev.started());
    expect(state.status).toBe('cancelling');
  });

  it('TaskCompleted: completed with the summary', () => {
    const state = given(ev.created(['n1']), ev.started(), ev.nodeSucceeded('n1'), ev.completed(1, 0));
    expect(state).toMatchObject({ status: 'completed', finishedAt: timeOf(4), percent: 100, lastSeq: 4 });
    expect(state.outcome).toMatchObject({
      type: 'TaskCompleted',
      seq: 4,
      data: { succeeded: 1, failed: 0, skipped: 0 },
    });
  });

  it('TaskFailed: failed with the error', () => {
    const state = given(ev.created(['n1']), ev.started(), ev.failed('kube API unreachable'));
    expect(state.status).toBe('failed');
    expect(state.outcome).toMatchObject({ type: 'TaskFailed', data: { error: 'kube API unreachable' } });
  });

  it('a second terminal event, and anything after the first, is ignored', () => {
    const ended = given(ev.created(['n1', 'n2']), ev.started(), ev.nodeSucceeded('n1'), ev.failed('lost'));
    const after = given(
      ev.created(['n1', 'n2']),
      ev.started(),
      ev.nodeSucceeded('n1'),
      ev.failed('lost'),
      ev.completed(2, 0),
      ev.nodeSucceeded('n2'),
      ev.cancelRequested(),
    );
    expect(after).toEqual(ended);
  });

  it('replayed seqs and other tasks’ events leave the state as it is', () => {
    const events = storedEvents(TASK, [ev.created(['n1']), ev.started(), ev.nodeSucceeded('n1')]);
    const once = foldTask(TASK, events);
    const replayed = foldTask(TASK, [...events, ...events]);
    expect(replayed).toEqual(once);
    const foreign = { ...events[2]!, taskId: 'other', seq: 4 } as StoredEvent;
    expect(reduceTask(once, foreign)).toBe(once);
  });

  it('does not change the state it is given', () => {
    const events = storedEvents(TASK, [
      ev.created(['n1', 'n2']),
      ev.nodeStarted('n1'),
      ev.nodeSucceeded('n1'),
    ]);
    const before = foldTask(TASK, events.slice(0, 2));
    const snapshot = structuredClone(before);
    reduceTask(before, events[2]!);
    expect(before).toEqual(snapshot);
  });
});

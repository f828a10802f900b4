import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewEvent, StoredEvent } from './events.js';
import { foldTask, reduceTask } from './reducer.js';
import { initialTaskState, isTerminalStatus, type TaskState } from './task-state.js';
import { ev, storedEvents } from './testing/stored-events.js';

const TASK = 'task-p';

/** Everything that must hold of any state the fold produces; returns what is violated. */
function problemsOf(state: TaskState): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  const nodeStates = Object.values(state.nodeStates);
  const withStatus = (status: string) =>
    nodeStates.filter((node) => node.status === status).map((node) => node.node);
  check(
    state.succeeded + state.failed + state.skipped === state.done,
    'succeeded + failed + skipped == done',
  );
  check(state.done <= state.total, 'done <= total');
  check(state.total === state.nodes.length, 'total == number of nodes');
  check(new Set(state.nodes).size === state.nodes.length, 'nodes are distinct');
  check(nodeStates.length === state.total, 'one node state per node');
  check(state.succeededNodes.length === state.succeeded, 'succeededNodes counted');
  check(state.failedNodes.length === state.failed, 'failedNodes counted');
  check(state.skippedNodes.length === state.skipped, 'skippedNodes counted');
  check(
    sameSet(state.succeededNodes, withStatus('succeeded')),
    'succeededNodes == nodes with status succeeded',
  );
  check(
    sameSet(
      state.failedNodes.map((f) => f.node),
      withStatus('failed'),
    ),
    'failedNodes == nodes with status failed',
  );
  check(sameSet(state.skippedNodes, withStatus('skipped')), 'skippedNodes == nodes with status skipped');
  check(
    sameSet(state.nodesInFlight, [...withStatus('running'), ...withStatus('retrying')]),
    'nodesInFlight == nodes running or retrying',
  );
  check(new Set(state.nodesInFlight).size === state.nodesInFlight.length, 'nodesInFlight distinct');
  const expectedPercent = state.total === 0 ? 0 : Math.floor((state.done * 10_000) / state.total) / 100;
  check(state.percent === expectedPercent, 'percent == done / total');
  check(state.percent >= 0 && state.percent <= 100, '0 <= percent <= 100');
  check(state.percent < 100 || state.done === state.total, 'percent 100 only when every node is done');
  check(isTerminalStatus(state.status) === (state.outcome !== null), 'terminal status iff outcome');
  check((state.finishedAt !== null) === (state.outcome !== null), 'finishedAt iff outcome');
  check(
    state.status !== 'cancelling' || state.cancelRequest !== null,
    'cancelling only after a cancel request',
  );
  for (const node of nodeStates) {
    check(node.attempts >= 0, `attempts of ${node.node} >= 0`);
    check(
      node.status === 'pending' || node.status === 'skipped' || node.attempts >= 1 || node.startedAt === null,
      'a started node has an attempt',
    );
    check(
      ['succeeded', 'failed', 'skipped'].includes(node.status) === (node.finishedAt !== null),
      'finishedAt iff node ended',
    );
  }
  return problems;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\u0000') === [...b].sort().join('\u0000');
}

const NODE_NAMES = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'constructor'];

type Step =
  | { kind: 'taskStarted' }
  | { kind: 'nodeStarted' | 'nodeSucceeded' | 'nodeFailed' | 'nodeSkipped'; node: number }
  | { kind: 'nodeProgress'; node: number; done: number; total: number }
  | { kind: 'nodeRetrying'; node: number; attempt: number }
  | { kind: 'cancel' }
  | { kind: 'terminal'; which: 0 | 1 | 2 };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.constant<Step>({ kind: 'taskStarted' }),
  fc.record({
    kind: fc.constantFrom('nodeStarted', 'nodeSucceeded', 'nodeFailed', 'nodeSkipped'),
    node: fc.nat(20),
  }),
  fc.record({ kind: fc.constant('nodeProgress'), node: fc.nat(20), done: fc.nat(10), total: fc.nat(10) }),
  fc.record({ kind: fc.constant('nodeRetrying'), node: fc.nat(20), attempt: fc.integer({ min: 1, max: 5 }) }),
  fc.constant<Step>({ kind: 'cancel' }),
  fc.record({ kind: fc.constant('terminal'), which: fc.constantFrom<0 | 1 | 2>(0, 1, 2) }),
) as fc.Arbitrary<Step>;

/**
 * A task's events as a worker would write them, resumed workers included
 * (a node that ended may be started and ended again), optionally with the
 * events a faulty writer would add: unknown nodes, terminal events in the
 * middle, events after the terminal one. `valid` sequences contain only
 * events the store accepts.
 */
function eventsArb(options: { valid: boolean }): fc.Arbitrary<StoredEvent[]> {
  return fc
    .record({
      nodes: fc.array(fc.constantFrom(...NODE_NAMES), { minLength: 1, maxLength: 8 }),
      steps: fc.array(stepArb, { maxLength: 80 }),
    })
    .map(({ nodes, steps }) => {
      const unique = [...new Set(nodes)];
      const events: NewEvent[] = [ev.created(nodes)];
      // Valid sequences only name the task's nodes; others may name any node.
      const pool = options.valid ? unique : NODE_NAMES;
      const nodeOf = (index: number) => pool[index % pool.length]!;
      for (const step of steps) {
        switch (step.kind) {
          case 'taskStarted':
            events.push(ev.started());
            break;
          case 'nodeStarted':
            events.push(ev.nodeStarted(nodeOf(step.node)));
            break;
          case 'nodeSucceeded':
            events.push(ev.nodeSucceeded(nodeOf(step.node)));
            break;
          case 'nodeFailed':
            events.push(ev.nodeFailed(nodeOf(step.node)));
            break;
          case 'nodeSkipped':
            events.push(ev.nodeSkipped(nodeOf(step.node)));
            break;
          case 'nodeProgress':
            events.push(ev.nodeProgress(nodeOf(step.node), step.done, step.total));
            break;
          case 'nodeRetrying':
            events.push(ev.nodeRetrying(nodeOf(step.node), step.attempt));
            break;
          case 'cancel':
            events.push(ev.cancelRequested());
            break;
          case 'terminal':
            events.push([ev.completed(0, 0), ev.cancelled(0, 0, 0), ev.failed()][step.which]!);
            break;
        }
        if (options.valid && step.kind === 'terminal') break;
      }
      return storedEvents(TASK, events);
    });
}

const anyEvents = fc.oneof(eventsArb({ valid: true }), eventsArb({ valid: false }));

describe('foldTask properties', () => {
  it('the fold of every prefix is a valid state', () => {
    fc.assert(
      fc.property(anyEvents, (events) => {
        let state = initialTaskState(TASK);
        for (const event of events) {
          state = reduceTask(state, event);
          expect(problemsOf(state), `after seq ${event.seq}`).toEqual([]);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('percent and done never go down, and an ended node never changes again', () => {
    fc.assert(
      fc.property(anyEvents, (events) => {
        let previous = initialTaskState(TASK);
        for (const event of events) {
          const next = reduceTask(previous, event);
          expect(next.percent).toBeGreaterThanOrEqual(previous.percent);
          expect(next.done).toBeGreaterThanOrEqual(previous.done);
          for (const node of Object.values(previous.nodeStates)) {
            if (['succeeded', 'failed', 'skipped'].includes(node.status))
              expect(next.nodeStates[node.node]).toBe(node);
          }
          previous = next;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('counts add up: each node counted once, by the first way it ended', () => {
    fc.assert(
      fc.property(eventsArb({ valid: true }), (events) => {
        const state = foldTask(TASK, events);
        const firstEnd = new Map<string, string>();
        const taskNodes = new Set(state.nodes);
        for (const event of events) {
          if (event.type === 'NodeSucceeded' || event.type === 'NodeFailed' || event.type === 'NodeSkipped') {
            if (taskNodes.has(event.data.node) && !firstEnd.has(event.data.node))
              firstEnd.set(event.data.node, event.type);
          }
        }
        const count = (type: string) => [...firstEnd.values()].filter((t) => t === type).length;
        expect(state.succeeded).toBe(count('NodeSucceeded'));
        expect(state.failed).toBe(count('NodeFailed'));
        expect(state.skipped).toBe(count('NodeSkipped'));
        expect(state.done).toBe(firstEnd.size);
        expect(state.lastSeq).toBe(events.length);
      }),
      { numRuns: 300 },
    );
  });

  it('ignores everything after the first terminal event', () => {
    fc.assert(
      fc.property(eventsArb({ valid: false }), (events) => {
        const terminalIndex = events.findIndex(
          (e) => e.type === 'TaskCompleted' || e.type === 'TaskCancelled' || e.type === 'TaskFailed',
        );
        fc.pre(terminalIndex !== -1);
        const upToTerminal = foldTask(TASK, events.slice(0, terminalIndex + 1));
        expect(foldTask(TASK, events)).toEqual(upToTerminal);
        expect(upToTerminal.lastSeq).toBe(terminalIndex + 1);
      }),
      { numRuns: 300 },
    );
  });

  it('folding an event twice (a replay) changes nothing', () => {
    fc.assert(
      fc.property(anyEvents, fc.array(fc.nat()), (events, repeats) => {
        const withReplays: StoredEvent[] = [];
        events.forEach((event, index) => {
          withReplays.push(event);
          const replay = repeats[index];
          if (replay !== undefined && replay % 3 === 0) withReplays.push(events[replay % (index + 1)]!);
        });
        expect(foldTask(TASK, withReplays)).toEqual(foldTask(TASK, events));
      }),
      { numRuns: 200 },
    );
  });
  it('foldTask, which grows its own collections in place, equals the pure step by step fold', () => {
    fc.assert(
      fc.property(anyEvents, (events) => {
        const states: TaskState[] = [];
        const snapshots: TaskState[] = [];
        let state = initialTaskState(TASK);
        for (const event of events) {
          state = reduceTask(state, event);
          states.push(state);
          snapshots.push(structuredClone(state));
        }
        expect(foldTask(TASK, events)).toEqual(state);
        // Nothing the pure steps returned was changed afterwards by a later step.
        expect(states).toEqual(snapshots);
      }),
      { numRuns: 200 },
    );
  });
});

import type { StoredEvent, StoredEventOf } from './events.js';
import type { NodeState, NodeStatus, TaskState, TaskStatus } from './task-state.js';
import { initialTaskState } from './task-state.js';

/**
 * The pure fold of a task's events into its state (invariant 1, docs/invariants.md). It is lenient
 * by design: the log is already validated on append, and a reader must never
 * crash on history. So it ignores what cannot change the state:
 * - events of another task and seqs already folded (a replayed or duplicated event);
 * - everything after the terminal event, including a second terminal event;
 * - node events for nodes the task does not have;
 * - a node event for a node that already ended (a resumed worker starting a
 *   node again must not count it twice).
 */
export function reduceTask(state: TaskState, event: StoredEvent): TaskState {
  return reduce(state, event, null);
}

/**
 * Folds events (in seq order) from the state before any event. The states in
 * between are never seen by anyone, so the fold grows the node map and lists
 * it created in place instead of copying them per event: copying made a
 * 1,000-node drain (6,000 events) cost seconds of CPU, quadratic in its size.
 */
export function foldTask(taskId: string, events: Iterable<StoredEvent>): TaskState {
  const owned: Owned = new WeakSet();
  let state = initialTaskState(taskId);
  for (const event of events) state = reduce(state, event, owned);
  return state;
}

/**
 * Collections that the running fold created itself and may therefore change
 * in place; null for a pure step, which copies whatever it changes.
 */
type Owned = WeakSet<object> | null;

function reduce(state: TaskState, event: StoredEvent, owned: Owned): TaskState {
  if (event.taskId !== state.taskId || event.seq <= state.lastSeq || state.outcome !== null) return state;
  const changed = applyEvent(state, event, owned);
  return { ...changed, lastSeq: event.seq, updatedAt: event.time };
}

function withNode(
  nodeStates: TaskState['nodeStates'],
  node: NodeState,
  owned: Owned,
): TaskState['nodeStates'] {
  if (owned?.has(nodeStates)) {
    (nodeStates as Record<string, NodeState>)[node.node] = node;
    return nodeStates;
  }
  const copy = { ...nodeStates, [node.node]: node };
  owned?.add(copy);
  return copy;
}

function appended<T>(list: readonly T[], item: T, owned: Owned): readonly T[] {
  if (owned?.has(list)) {
    (list as T[]).push(item);
    return list;
  }
  const copy = [...list, item];
  owned?.add(copy);
  return copy;
}

function withoutName(list: readonly string[], name: string, owned: Owned): readonly string[] {
  if (owned?.has(list)) {
    const index = list.indexOf(name);
    if (index >= 0) (list as string[]).splice(index, 1);
    return list;
  }
  const copy = list.filter((n) => n !== name);
  owned?.add(copy);
  return copy;
}

function applyEvent(state: TaskState, event: StoredEvent, owned: Owned): TaskState {
  switch (event.type) {
    case 'TaskCreated': {
      // A second TaskCreated cannot redefine the task.
      if (state.userId !== null) return state;
      const nodes = [...new Set(event.data.nodes)];
      const nodeStates: Record<string, NodeState> = {};
      for (const node of nodes) nodeStates[node] = pendingNode(node);
      return {
        ...state,
        userId: event.data.userId,
        action: event.data.action,
        params: event.data.params,
        reason: event.data.reason ?? null,
        cluster: event.data.cluster ?? null,
        nodes,
        total: nodes.length,
        nodeStates,
        createdAt: event.time,
      };
    }
    case 'TaskStarted':
      return {
        ...markStarted(state, event.time),
        workerAttempts: state.workerAttempts + 1,
        clusterMode: event.data.clusterMode ?? state.clusterMode,
      };
    case 'NodeStarted':
      return updateNode(state, event.data.node, event.time, owned, (node) => ({
        ...node,
        status: 'running',
        attempts: Math.max(node.attempts + 1, event.data.attempt),
        startedAt: node.startedAt ?? event.time,
      }));
    case 'NodeProgress':
      return updateNode(state, event.data.node, event.time, owned, (node) => ({
        ...node,
        // Progress from a node nobody announced as started still means it runs.
        status: node.status === 'pending' ? 'running' : node.status,
        attempts: Math.max(node.attempts, 1),
        startedAt: node.startedAt ?? event.time,
        progress: { done: event.data.done, total: event.data.total, message: event.data.message ?? null },
      }));
    case 'NodeRetrying':
      return updateNode(state, event.data.node, event.time, owned, (node) => ({
        ...node,
        status: 'retrying',
        attempts: Math.max(node.attempts, event.data.attempt),
        startedAt: node.startedAt ?? event.time,
        error: event.data.error,
      }));
    case 'NodeSucceeded':
      return finishNode(state, event, owned);
    case 'NodeFailed':
      return finishNode(state, event, owned);
    case 'NodeSkipped':
      return finishNode(state, event, owned);
    case 'CancelRequested': {
      if (state.cancelRequest !== null) return state;
      return {
        ...state,
        status: 'cancelling',
        cancelRequest: { by: event.data.by, reason: event.data.reason ?? null, time: event.time },
      };
    }
    case 'TaskCompleted':
    case 'TaskCancelled':
    case 'TaskFailed':
      return finishTask(state, event);
  }
}

function pendingNode(node: string): NodeState {
  return {
    node,
    status: 'pending',
    attempts: 0,
    progress: null,
    error: null,
    message: null,
    startedAt: null,
    finishedAt: null,
  };
}

/** Own properties only: a node called `constructor` must not find Object.prototype's. */
function nodeStateOf(state: TaskState, node: string): NodeState | undefined {
  return Object.hasOwn(state.nodeStates, node) ? state.nodeStates[node] : undefined;
}

function isEnded(status: NodeStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'skipped';
}

function isInFlight(status: NodeStatus): boolean {
  return status === 'running' || status === 'retrying';
}

function markStarted(state: TaskState, time: string): TaskState {
  const status: TaskStatus = state.status === 'pending' ? 'running' : state.status;
  return { ...state, status, startedAt: state.startedAt ?? time };
}

/** Applies a change to a node that has not ended yet, keeping `nodesInFlight` in step. */
function updateNode(
  state: TaskState,
  name: string,
  time: string,
  owned: Owned,
  change: (node: NodeState) => NodeState,
): TaskState {
  const node = nodeStateOf(state, name);
  if (node === undefined || isEnded(node.status)) return state;
  const updated = change(node);
  const wasInFlight = isInFlight(node.status);
  const nowInFlight = isInFlight(updated.status);
  let nodesInFlight = state.nodesInFlight;
  if (!wasInFlight && nowInFlight) nodesInFlight = appended(nodesInFlight, name, owned);
  else if (wasInFlight && !nowInFlight) nodesInFlight = withoutName(nodesInFlight, name, owned);
  return {
    ...markStarted(state, time),
    nodeStates: withNode(state.nodeStates, updated, owned),
    nodesInFlight,
  };
}

type NodeEndEvent = StoredEventOf<'NodeSucceeded' | 'NodeFailed' | 'NodeSkipped'>;

function finishNode(state: TaskState, event: NodeEndEvent, owned: Owned): TaskState {
  const name = event.data.node;
  const node = nodeStateOf(state, name);
  if (node === undefined || isEnded(node.status)) return state;
  const done = state.done + 1;
  const base: TaskState = {
    ...state,
    nodesInFlight: isInFlight(node.status)
      ? withoutName(state.nodesInFlight, name, owned)
      : state.nodesInFlight,
    done,
    // Floor keeps 100 for "every node done" and, done only growing, never goes down.
    percent: state.total === 0 ? 0 : Math.floor((done * 10_000) / state.total) / 100,
  };
  const ended = { ...node, finishedAt: event.time };
  switch (event.type) {
    case 'NodeSucceeded':
      return {
        ...base,
        succeeded: state.succeeded + 1,
        succeededNodes: appended(state.succeededNodes, name, owned),
        nodeStates: withNode(
          state.nodeStates,
          {
            ...ended,
            status: 'succeeded',
            message: event.data.message ?? null,
            ...(event.data.drainPlan && { drainPlan: event.data.drainPlan }),
          },
          owned,
        ),
      };
    case 'NodeFailed':
      return {
        ...base,
        failed: state.failed + 1,
        failedNodes: appended(
          state.failedNodes,
          {
            node: name,
            error: event.data.error,
            code: event.data.code ?? null,
            retryable: event.data.retryable,
          },
          owned,
        ),
        nodeStates: withNode(
          state.nodeStates,
          { ...ended, status: 'failed', error: event.data.error },
          owned,
        ),
      };
    case 'NodeSkipped':
      return {
        ...base,
        skipped: state.skipped + 1,
        skippedNodes: appended(state.skippedNodes, name, owned),
        nodeStates: withNode(
          state.nodeStates,
          { ...ended, status: 'skipped', message: event.data.reason },
          owned,
        ),
      };
  }
}

type TerminalEvent = StoredEventOf<'TaskCompleted' | 'TaskCancelled' | 'TaskFailed'>;

const TERMINAL_STATUS = {
  TaskCompleted: 'completed',
  TaskCancelled: 'cancelled',
  TaskFailed: 'failed',
} as const satisfies Record<TerminalEvent['type'], TaskStatus>;

function finishTask(state: TaskState, event: TerminalEvent): TaskState {
  return {
    ...state,
    status: TERMINAL_STATUS[event.type],
    finishedAt: event.time,
    outcome: { type: event.type, seq: event.seq, time: event.time, data: event.data } as TaskState['outcome'],
  };
}

import type { BatchAction, DrainPlan, StoredEventOf, TerminalEventType } from './events.js';

/**
 * A task's state is the fold of its events (invariant 1, docs/invariants.md); this file only
 * describes its shape. The fold itself is in reducer.ts.
 */

/**
 * `pending` from TaskCreated until the task or one of its nodes starts,
 * `cancelling` after CancelRequested until the terminal event; the last three
 * are terminal.
 */
export type TaskStatus = 'pending' | 'running' | 'cancelling' | 'completed' | 'cancelled' | 'failed';

export const TERMINAL_TASK_STATUSES = [
  'completed',
  'cancelled',
  'failed',
] as const satisfies readonly TaskStatus[];

export function isTerminalStatus(status: TaskStatus): boolean {
  return (TERMINAL_TASK_STATUSES as readonly TaskStatus[]).includes(status);
}

/** `retrying`: an attempt failed with a transient error and the node waits for the next attempt. */
export type NodeStatus = 'pending' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'skipped';

/** The node's own progress as last reported (for drain: pods evicted so far out of the pods to evict). */
export interface NodeProgressState {
  readonly done: number;
  readonly total: number;
  readonly message: string | null;
}

export interface NodeState {
  readonly node: string;
  readonly status: NodeStatus;
  /** How many attempts were started (at least the attempt number an event announced). */
  readonly attempts: number;
  readonly progress: NodeProgressState | null;
  /** The error of the last failed attempt (NodeRetrying) or of the final failure (NodeFailed). */
  readonly error: string | null;
  /** NodeSucceeded's message or NodeSkipped's reason. */
  readonly message: string | null;
  /** A drain dry run's finding on the node, when its NodeSucceeded carried one. */
  readonly drainPlan?: DrainPlan;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
}

export interface FailedNode {
  readonly node: string;
  readonly error: string;
  readonly code: string | null;
  /** Whether the cause was transient (the retries were exhausted). */
  readonly retryable: boolean;
}

export interface CancelRequest {
  readonly by: string;
  readonly reason: string | null;
  readonly time: string;
}

/** The one terminal event of a task, as it is in the log. */
export type TaskOutcome = {
  [T in TerminalEventType]: Pick<StoredEventOf<T>, 'type' | 'seq' | 'time' | 'data'>;
}[TerminalEventType];

export interface TaskState {
  readonly taskId: string;
  /** Null until TaskCreated was folded. */
  readonly userId: string | null;
  readonly action: BatchAction | null;
  readonly params: Readonly<Record<string, unknown>>;
  /** Why the batch was asked for (TaskCreated.reason); null when not given. */
  readonly reason: string | null;
  /** The named cluster of the batch; null: the only or default one. */
  readonly cluster: string | null;
  /** What the last worker ran against (`simulated` is never a surprise); null before it started. */
  readonly clusterMode: 'kubernetes' | 'simulated' | null;
  readonly status: TaskStatus;
  /** The task's nodes in the order TaskCreated named them (duplicates removed). */
  readonly nodes: readonly string[];
  /** Number of nodes; `done` never exceeds it. */
  readonly total: number;
  /** Nodes that reached an end: succeeded + failed + skipped. */
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly succeededNodes: readonly string[];
  readonly failedNodes: readonly FailedNode[];
  readonly skippedNodes: readonly string[];
  /** Nodes running or waiting for a retry, in the order they started. */
  readonly nodesInFlight: readonly string[];
  readonly nodeStates: Readonly<Record<string, NodeState>>;
  /** 0..100, `done / total` rounded down to two decimals; never goes down. 100 only when every node is done. */
  readonly percent: number;
  /** Seq of the last folded event; 0 before any. */
  readonly lastSeq: number;
  readonly createdAt: string | null;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** Time of the last folded event. */
  readonly updatedAt: string | null;
  /** How many times a worker started (or resumed) the task. */
  readonly workerAttempts: number;
  readonly cancelRequest: CancelRequest | null;
  /** The terminal event; null while the task is not over. */
  readonly outcome: TaskOutcome | null;
}

/** The state of a task before any of its events: what the fold starts from. */
export function initialTaskState(taskId: string): TaskState {
  return {
    taskId,
    userId: null,
    action: null,
    params: {},
    reason: null,
    cluster: null,
    clusterMode: null,
    status: 'pending',
    nodes: [],
    total: 0,
    done: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    succeededNodes: [],
    failedNodes: [],
    skippedNodes: [],
    nodesInFlight: [],
    nodeStates: {},
    percent: 0,
    lastSeq: 0,
    createdAt: null,
    startedAt: null,
    finishedAt: null,
    updatedAt: null,
    workerAttempts: 0,
    cancelRequest: null,
    outcome: null,
  };
}

import type { BatchAction, TaskStatus } from '@nodebatch/progress';

/**
 * The shapes of the gateway's HTTP API as the client sends and receives them
 * (DESIGN.md, "Contract that users and other services rely on").
 */

/** Body of `POST /api/v1/batches`: exactly one of `nodes` or `selector`. */
export interface BatchRequest {
  action: BatchAction;
  /** The nodes, by name. */
  nodes?: string[];
  /** A label selector (`role=worker,zone!=a`), resolved by the gateway when it accepts the batch. */
  selector?: string;
  /** The action's parameters: labels and taints, drain options (`force`, `gracePeriodSeconds`, …). */
  params?: Record<string, unknown>;
  /** Nodes worked on at once; the service's default when absent. */
  concurrency?: number;
  /** The named cluster; the service's default when absent. */
  cluster?: string;
  /** Why: recorded in the audit trail and, for cordon and drain, on the nodes. */
  reason?: string;
}

export interface BatchAccepted {
  taskId: string;
}

/** One row of `GET /api/v1/tasks`. */
export interface TaskSummary {
  taskId: string;
  userId: string;
  action: BatchAction;
  /** The named cluster the task runs on; null when its TaskCreated names none. */
  cluster?: string | null;
  status: TaskStatus;
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  skipped: number;
  lastSeq: number;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  [more: string]: unknown;
}

export interface ListTasksQuery {
  status?: TaskStatus;
  /** At most this many, newest first. */
  limit?: number;
}

export interface NodeTaint {
  key: string;
  value?: string;
  effect: string;
}

/** One node of `GET /api/v1/nodes`. */
export interface NodeInfo {
  name: string;
  /** The Ready condition's status. */
  ready?: 'True' | 'False' | 'Unknown';
  schedulable?: boolean;
  roles?: string[];
  labels?: Record<string, string>;
  taints?: NodeTaint[];
  /** Who cordoned it, when and why (a cordon with a reason). */
  cordonReason?: { reason: string; by: string; at?: string } | null;
  cluster?: string;
  [more: string]: unknown;
}

export interface ListNodesQuery {
  /** A label selector. */
  selector?: string;
  cluster?: string;
  /** Nodes per request; listNodes still returns every page. */
  limit?: number;
  [more: string]: string | number | undefined;
}

/** One entry of `GET /api/v1/audit`: who, from where, when, what, the policy's decision, the outcome. */
export interface AuditEntry {
  id: string;
  time: string;
  [field: string]: unknown;
}

/** A page of the audit trail, newest first. */
export interface AuditPage {
  entries: AuditEntry[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

export interface ListAuditQuery {
  user?: string;
  action?: string;
  node?: string;
  task?: string;
  /** ISO-8601: entries at or after. */
  since?: string;
  /** ISO-8601: entries strictly before. */
  until?: string;
  /** The `nextCursor` of the previous page. */
  before?: string;
  /** Entries per page (the gateway's default 100, at most 1000). */
  limit?: number;
}

/** Answer of `POST /api/v1/tasks/:id/cancel`. */
export interface CancelAccepted {
  taskId: string;
  status: string;
}

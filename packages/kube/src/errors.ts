import { NodebatchError } from '@nodebatch/progress';
import { describeRefusal } from './drain-filters.js';

/** One thing wrong with an input: `path` names the field (`labels["a b"]`, `params.add[0].effect`). */
export interface InputIssue {
  path: string;
  message: string;
}

/**
 * A node name, label, taint or batch parameter broke Kubernetes' rules. Thrown before
 * anything is sent, so retrying cannot help; `issues` names every field that was wrong.
 */
export class InvalidNodeInputError extends NodebatchError {
  readonly issues: readonly InputIssue[];

  constructor(issues: readonly InputIssue[], options?: { cause?: unknown; summary?: string }) {
    const list = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
    super('INVALID_NODE_INPUT', options?.summary ? `${options.summary}: ${list}` : list, options);
    this.issues = issues;
  }
}

/** Why a Kubernetes call failed, as a stable code (also NodeFailed.code in progress events). */
export type KubeErrorCode =
  | 'NODE_NOT_FOUND'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'EVICTION_BLOCKED'
  | 'DRAIN_TIMEOUT'
  | 'DRAIN_REFUSED'
  | 'SOURCE_NODE_NOT_FOUND'
  | 'FORBIDDEN'
  | 'UNAUTHORIZED'
  | 'INVALID'
  | 'KUBE_SERVER_ERROR'
  | 'KUBE_UNREACHABLE'
  | 'KUBE_REQUEST_FAILED'
  | 'SIMULATED_FAILURE';

export interface KubeOperationErrorOptions {
  code: KubeErrorCode;
  /** The operation that failed: `cordon`, `drain`, `addTaints`, ... */
  operation: string;
  node: string;
  /** HTTP status of the API server's answer; undefined when no answer came (network error). */
  statusCode?: number;
  /** Whether trying the same operation again later may succeed (5xx, 429, network, exhausted 409 retries). */
  retryable: boolean;
  cause?: unknown;
}

/** A node operation failed at the API server (or in the simulated cluster, which fails the same way). */
export class KubeOperationError extends NodebatchError {
  override readonly code: KubeErrorCode;
  readonly operation: string;
  readonly node: string;
  readonly statusCode: number | undefined;
  readonly retryable: boolean;

  constructor(message: string, options: KubeOperationErrorOptions) {
    super(options.code, message, { cause: options.cause });
    this.code = options.code;
    this.operation = options.operation;
    this.node = options.node;
    this.statusCode = options.statusCode;
    this.retryable = options.retryable;
  }
}

/** Why pods were still on the node when a drain ran out of time. */
export type DrainTimeoutCause = 'disruption-budget' | 'slow-termination';

/**
 * A drain ran out of its per-node time while pods were still there: either their evictions were
 * still refused by a PodDisruptionBudget (429), or they were evicted but had not terminated yet.
 * Not retryable: the whole per-node budget was spent waiting already; the node stays cordoned.
 */
export class DrainTimeoutError extends KubeOperationError {
  /** `namespace/name` of every pod still on the node (blocked and terminating). */
  readonly remainingPods: readonly string[];
  /** Pods whose evictions a disruption budget still refused, with the budget's name when known. */
  readonly blockedPods: readonly { pod: string; budget?: string }[];
  /** Pods evicted but not gone yet. */
  readonly terminatingPods: readonly string[];

  constructor(
    node: string,
    timeoutMs: number,
    pods: { blocked: readonly { pod: string; budget?: string }[]; terminating: readonly string[] },
    cause?: unknown,
  ) {
    const parts: string[] = [];
    if (pods.blocked.length > 0) {
      parts.push(
        `a PodDisruptionBudget still refused the eviction of ${listPods(
          pods.blocked.map((entry) => (entry.budget ? `${entry.pod} (budget ${entry.budget})` : entry.pod)),
        )}`,
      );
    }
    if (pods.terminating.length > 0) {
      parts.push(`evicted pods were still terminating (slow termination): ${listPods(pods.terminating)}`);
    }
    super(
      `drain of node "${node}" did not complete within ${timeoutMs} ms: ${parts.join('; ')}; the node stays cordoned`,
      { code: 'DRAIN_TIMEOUT', operation: 'drain', node, statusCode: undefined, retryable: false, cause },
    );
    this.blockedPods = pods.blocked;
    this.terminatingPods = pods.terminating;
    this.remainingPods = [...pods.blocked.map((entry) => entry.pod), ...pods.terminating];
  }

  /** What kept the drain: a budget when any eviction was still refused, otherwise slow termination. */
  get timeoutCause(): DrainTimeoutCause {
    return this.blockedPods.length > 0 ? 'disruption-budget' : 'slow-termination';
  }
}

function listPods(pods: readonly string[]): string {
  return `${pods.slice(0, 10).join(', ')}${pods.length > 10 ? `, ... (${pods.length} in all)` : ''}`;
}

/**
 * A drain found pods it must not remove without being told to (kubectl's gates): pods that declare
 * no controller (nothing recreates them; `force`) or that keep data in emptyDir volumes
 * (`deleteEmptyDirData`). Nothing was evicted; retrying cannot help until the batch says so.
 */
export class DrainRefusedError extends KubeOperationError {
  readonly refused: readonly { message: string; pods: readonly string[] }[];

  constructor(node: string, refused: readonly { message: string; pods: readonly string[] }[]) {
    super(
      `drain of node "${node}" refused: ${describeRefusal(refused)}; no pod was evicted and the node stays cordoned`,
      { code: 'DRAIN_REFUSED', operation: 'drain', node, retryable: false },
    );
    this.refused = refused;
  }
}

/**
 * The node whose taints a batch copies does not exist. Raised once, when the batch reads the source,
 * so the task fails once with this message instead of each node failing alike.
 */
export class SourceNodeNotFoundError extends KubeOperationError {
  constructor(node: string, options?: { cause?: unknown }) {
    super(`the source node "${node}" to copy taints from was not found; check the name (params.copyFrom)`, {
      code: 'SOURCE_NODE_NOT_FOUND',
      operation: 'readTaints',
      node,
      statusCode: 404,
      retryable: false,
      ...(options?.cause === undefined ? {} : { cause: options.cause }),
    });
  }
}

/** The caller's AbortSignal fired; the operation stopped where it was (a drained node stays cordoned). */
export class OperationAbortedError extends NodebatchError {
  readonly operation: string;
  readonly node: string;

  constructor(operation: string, node: string, options?: { cause?: unknown }) {
    super('ABORTED', `${operation} of node "${node}" was aborted`, options);
    this.operation = operation;
    this.node = node;
  }
}

/** Neither a Kubernetes cluster nor the simulated one is configured; says how to configure either. */
export class ClusterNotConfiguredError extends NodebatchError {
  constructor(
    /** What is missing, without the advice (for messages that list several clusters). */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      'CLUSTER_NOT_CONFIGURED',
      `no Kubernetes cluster is configured (${detail}). Give one of: ` +
        'KUBECONFIG=/path/to/kubeconfig, a kubeconfig at ~/.kube/config, or run inside a pod with a ' +
        'service account (token at /var/run/secrets/kubernetes.io/serviceaccount/token and ' +
        'KUBERNETES_SERVICE_HOST set); or set NODEBATCH_CLUSTER=simulated to use the simulated cluster',
      options,
    );
  }
}

import { NodebatchError } from '@nodebatch/progress';

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

/**
 * A drain ran out of its per-node time while pods were still blocked (usually by a
 * PodDisruptionBudget answering 429). Not retryable: the whole per-node budget was spent
 * waiting already; the node stays cordoned.
 */
export class DrainTimeoutError extends KubeOperationError {
  /** `namespace/name` of every pod that was still not evicted. */
  readonly remainingPods: readonly string[];

  constructor(node: string, timeoutMs: number, remainingPods: readonly string[], cause?: unknown) {
    super(
      `drain of node "${node}" timed out after ${timeoutMs} ms with ${remainingPods.length} pod(s) not evicted ` +
        `(${remainingPods.slice(0, 10).join(', ')}${remainingPods.length > 10 ? ', ...' : ''}); ` +
        'a PodDisruptionBudget may be blocking them; the node stays cordoned',
      { code: 'DRAIN_TIMEOUT', operation: 'drain', node, statusCode: 429, retryable: false, cause },
    );
    this.remainingPods = remainingPods;
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
  constructor(detail: string, options?: { cause?: unknown }) {
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

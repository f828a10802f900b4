/** Effects a taint can have, as Kubernetes accepts them (core/v1 TaintEffect). */
export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
export type TaintEffect = (typeof TAINT_EFFECTS)[number];

/** A node taint. `key` follows label-key rules, `value` label-value rules (may be empty or absent). */
export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect;
}

/** Names taints to remove: the taint with `key` and `effect`, or every taint with `key` when no effect is given. */
export interface TaintRef {
  key: string;
  effect?: TaintEffect;
}

/** Drain progress: `done` of `total` evictable pods are gone; `message` says what just happened. */
export interface DrainProgress {
  done: number;
  total: number;
  message: string;
}

export interface OperationOptions {
  /** Stops the operation (and any request in flight); it then rejects with OperationAbortedError. */
  signal?: AbortSignal;
}

export interface DrainOptions extends OperationOptions {
  /**
   * Time allowed for the whole drain of this node (cordon, evictions, waiting). Evictions blocked by a
   * PodDisruptionBudget (429) are retried with backoff until then; then DrainTimeoutError. Default 300000.
   */
  timeoutMs?: number;
  /** Grace period passed with each eviction (deleteOptions.gracePeriodSeconds); default: the pod's own. */
  gracePeriodSeconds?: number;
  /** After evicting, wait until the evicted pods are gone from the node (within timeoutMs). Default false. */
  waitForDeletion?: boolean;
  /** Called once with done 0 when the pods are known, then after each pod is evicted. Must not throw. */
  onProgress?: (progress: DrainProgress) => void;
}

/** Why a pod was left on a drained node. */
export interface SkippedPod {
  /** `namespace/name`. */
  pod: string;
  reason: 'daemonset' | 'mirror';
}

export interface DrainResult {
  /** `namespace/name` of every pod evicted (or found already gone: an eviction answered 404). */
  evicted: string[];
  skipped: SkippedPod[];
}

/**
 * Operations on one Kubernetes node. Every input is validated by Kubernetes' own rules before
 * anything is sent (InvalidNodeInputError); failures at the cluster are KubeOperationError with
 * `statusCode` and `retryable`; an aborted signal gives OperationAbortedError. Every operation is
 * idempotent, so a task resumed by another worker may safely repeat one.
 */
export interface NodeOperator {
  /** `kubernetes` talks to an API server; `simulated` is the in-memory cluster for demos and benchmarks. */
  readonly kind: 'kubernetes' | 'simulated';

  /** Marks the node unschedulable (spec.unschedulable = true). */
  cordon(node: string, options?: OperationOptions): Promise<void>;

  /** Marks the node schedulable again. */
  uncordon(node: string, options?: OperationOptions): Promise<void>;

  /**
   * Cordons the node, then evicts every pod on it through the Eviction API except DaemonSet-owned
   * and mirror (static) pods. Blocked evictions are retried until `timeoutMs`; an eviction answered
   * 404 counts as done (the pod was already gone). Reports progress per evicted pod.
   */
  drain(node: string, options?: DrainOptions): Promise<DrainResult>;

  /** Sets labels on the node (adds or overwrites each key; other labels are kept). */
  addLabels(node: string, labels: Record<string, string>, options?: OperationOptions): Promise<void>;

  /** Removes the labels with these keys; keys the node does not have are ignored. */
  removeLabels(node: string, keys: readonly string[], options?: OperationOptions): Promise<void>;

  /**
   * Adds taints; a taint with the same key and effect as an existing one replaces it (its value
   * changes). Conflicting concurrent changes to the node are retried on a fresh read.
   */
  addTaints(node: string, taints: readonly Taint[], options?: OperationOptions): Promise<void>;

  /** Removes the taints named; names that match nothing are ignored. */
  removeTaints(node: string, refs: readonly TaintRef[], options?: OperationOptions): Promise<void>;

  /**
   * Sets every taint of `fromNode` on `toNode` (as addTaints does: same key and effect replaced,
   * other taints of `toNode` kept). For several targets, call once per target.
   */
  copyTaints(fromNode: string, toNode: string, options?: OperationOptions): Promise<void>;
}

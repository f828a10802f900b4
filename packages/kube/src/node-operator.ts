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
   * Time allowed for the whole drain of this node (cordon, evictions, waiting for the pods to go).
   * Evictions refused by a PodDisruptionBudget (429) are retried until then; then DrainTimeoutError
   * naming the pods left and why. Default: the operator's (300000).
   */
  timeoutMs?: number;
  /** Grace period given to each removed pod (deleteOptions.gracePeriodSeconds); default: the pod's own. */
  gracePeriodSeconds?: number;
  /** Remove pods that declare no controller (nothing recreates them) and orphaned DaemonSet pods. Default false. */
  force?: boolean;
  /** Remove pods with emptyDir volumes (their data is lost). Default false. */
  deleteEmptyDirData?: boolean;
  /** A label selector: only pods matching it are removed (and gated). Default: every pod. */
  podSelector?: string;
  /** DELETE the pods instead of evicting them: bypasses PodDisruptionBudgets. Default false. */
  disableEviction?: boolean;
  /**
   * Server-side dry run (dryRun=All on every write): reports what would be removed and what blocks
   * it, changes nothing, and does not wait. Default false.
   */
  dryRun?: boolean;
  /**
   * Stop waiting for pods whose deletion started more than this many seconds ago (a NotReady node
   * never confirms them), and leave such pods alone. Default 0: always wait.
   */
  skipWaitForDeleteTimeoutSeconds?: number;
  /** Called with done 0 when the pods are known, after each pod is removed, and for each wait. Must not throw. */
  onProgress?: (progress: DrainProgress) => void;
}

/** Why a pod was left on a drained node. */
export interface SkippedPod {
  /** `namespace/name`. */
  pod: string;
  /** `deletion-timed-out`: its deletion started longer ago than skipWaitForDeleteTimeoutSeconds. */
  reason: 'daemonset' | 'mirror' | 'deletion-timed-out';
}

/** A pod a dry run could not remove, and why (a gate's message, or the disruption budget's refusal). */
export interface BlockedPod {
  pod: string;
  reason: string;
}

export interface DrainResult {
  /** `namespace/name` of every pod removed and gone (or, in a dry run, that would be). */
  evicted: string[];
  skipped: SkippedPod[];
  /** Whether this was a dry run (nothing changed). */
  dryRun: boolean;
  /** Dry run only: pods that would stop the drain. */
  blocked: BlockedPod[];
  /** Whether pods were deleted (disableEviction) rather than evicted. */
  deleted: boolean;
}

/** Who cordons and why: written as node annotations with the cordon, removed by uncordon. */
export interface CordonReason {
  /** Why (free text, at most 1024 characters). */
  reason: string;
  /** Who asked (a user id). */
  by: string;
  /** When, ISO-8601. Default: now. */
  at?: string;
}

export interface CordonOptions extends OperationOptions {
  /** Annotations saying who cordoned the node, when and why, set in the same patch as the cordon. */
  reason?: CordonReason;
  /** Server-side dry run: the API server checks the patch and changes nothing. Default false. */
  dryRun?: boolean;
}

export interface CordonResult {
  /** The node was unschedulable before this cordon. */
  alreadyCordoned: boolean;
}

export interface CopyTaintsOptions extends OperationOptions {
  /** `merge` (default): add to the target's taints; `replace`: the target ends with the source's set. */
  mode?: 'merge' | 'replace';
  /** The source's taints, read once per batch (readTaints); default: read `fromNode` now. */
  taints?: readonly Taint[];
}

/** Annotations nodebatch writes with a cordon (removed by uncordon). */
export const CORDON_ANNOTATIONS = {
  reason: 'nodebatch.io/cordon-reason',
  by: 'nodebatch.io/cordoned-by',
  at: 'nodebatch.io/cordoned-at',
} as const;

/**
 * Operations on one Kubernetes node. Every input is validated by Kubernetes' own rules before
 * anything is sent (InvalidNodeInputError); failures at the cluster are KubeOperationError with
 * `statusCode` and `retryable`; an aborted signal gives OperationAbortedError. Every operation is
 * idempotent, so a task resumed by another worker may safely repeat one.
 */
export interface NodeOperator {
  /** `kubernetes` talks to an API server; `simulated` is the in-memory cluster for demos and benchmarks. */
  readonly kind: 'kubernetes' | 'simulated';

  /** Marks the node unschedulable (spec.unschedulable = true), with reason annotations when given. */
  cordon(node: string, options?: CordonOptions): Promise<CordonResult>;

  /** Marks the node schedulable again and removes the cordon reason annotations. */
  uncordon(node: string, options?: OperationOptions): Promise<void>;

  /**
   * Drains the node as `kubectl drain --ignore-daemonsets` does: cordons it, refuses (DrainRefusedError,
   * nothing evicted) when pods without a controller or with emptyDir data are there and the options
   * do not allow them, evicts the others through policy/v1 (PodDisruptionBudget refusals retried
   * until `timeoutMs`, each reported), and resolves only when the removed pods are gone.
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

  /** The taints of a node (a copy source), without timeAdded. A missing node: SourceNodeNotFoundError. */
  readTaints(node: string, options?: OperationOptions): Promise<Taint[]>;

  /**
   * Sets the taints of `fromNode` on `toNode`, except those the cluster manages itself
   * (`node.kubernetes.io/*`, `node.cloudprovider.kubernetes.io/*`). `merge` (default) keeps the
   * target's other taints; `replace` drops them (but never the cluster's own). For several targets,
   * read the source once with readTaints and pass `taints`.
   */
  copyTaints(fromNode: string, toNode: string, options?: CopyTaintsOptions): Promise<void>;
}

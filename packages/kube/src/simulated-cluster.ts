import type { Logger } from 'pino';
import { evictionDelay, systemClock, type Clock } from './clock.js';
import {
  DrainRefusedError,
  DrainTimeoutError,
  KubeOperationError,
  OperationAbortedError,
  SourceNodeNotFoundError,
} from './errors.js';
import {
  CORDON_ANNOTATIONS,
  type CopyTaintsOptions,
  type CordonOptions,
  type CordonResult,
  type DrainOptions,
  type DrainResult,
  type NodeOperator,
  type OperationOptions,
  type SkippedPod,
  type Taint,
  type TaintRef,
} from './node-operator.js';
import { cordonAnnotations, validateCordonReason } from './cordon-reason.js';
import { describeDrainStart } from './drain-messages.js';
import {
  MIRROR_POD_ANNOTATION,
  podKey as candidateKey,
  selectPodsToDrain,
  type DrainCandidatePod,
} from './drain-filters.js';
import { validateDrainOptions } from './kubernetes-drain.js';
import { matchesLabelSelector, parseLabelSelector } from './label-selector.js';
import { copyableTaints, isClusterManagedTaint, mergeTaints, removeTaintRefs } from './taints.js';
import {
  validateLabelKeys,
  validateLabels,
  validateNodeName,
  validateTaintRefs,
  validateTaints,
} from './validation.js';

export interface SimulatedPod {
  namespace: string;
  name: string;
  /** Kind of the controlling owner (`ReplicaSet`, `DaemonSet`, ...) or undefined for a bare pod. */
  ownerKind?: string;
  /** Mirror pods (static pods of the kubelet) cannot be evicted and are skipped by drain. */
  mirror?: boolean;
  /** Has an emptyDir volume: drain refuses it unless deleteEmptyDirData. */
  emptyDir?: boolean;
  /** Pod phase; Succeeded and Failed pods are removed without the gates. Default Running. */
  phase?: string;
  labels?: Record<string, string>;
}

export interface SimulatedNode {
  name: string;
  unschedulable: boolean;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  taints: Taint[];
  pods: SimulatedPod[];
}

export interface SimulatedClusterOptions {
  /** Nodes `sim-node-1` .. `sim-node-N`, node i with 2 + (i % 3) ReplicaSet pods and one DaemonSet pod. Default 50. */
  nodes?: number;
  /** Latency of each operation and of each pod eviction, ms. Default 0. */
  latencyMs?: number;
  /** Probability (0..1) that an operation fails with a retryable error. Default 0. */
  failureRate?: number;
  /** Default drain time limit per node, ms. Default 300000. */
  drainTimeoutMs?: number;
  /** Backoff between retries of a blocked eviction. Default 1000 ms doubling to 30000 ms. */
  evictionBackoff?: { initialMs: number; maxMs: number };
  /** Source of randomness for failures, jitter and rescheduling. Default Math.random. */
  random?: () => number;
  clock?: Clock;
  logger?: Logger;
}

/**
 * An in-memory cluster for the demo and benchmarks: same validation, same errors and the same
 * drain progress as the Kubernetes operator, with configurable latency and failure rate.
 * Evicted pods are recreated on another schedulable node, as their controller would do.
 */
export class SimulatedCluster implements NodeOperator {
  readonly kind = 'simulated' as const;
  readonly #nodes = new Map<string, SimulatedNode>();
  /** Pods blocked by a pretend PodDisruptionBudget: remaining refusals, or Infinity. */
  readonly #blockedEvictions = new Map<string, number>();
  readonly #latencyMs: number;
  readonly #failureRate: number;
  readonly #drainTimeoutMs: number;
  readonly #evictionBackoff: { initialMs: number; maxMs: number };
  readonly #random: () => number;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  #podCounter = 0;

  constructor(options: SimulatedClusterOptions = {}) {
    this.#latencyMs = options.latencyMs ?? 0;
    this.#failureRate = options.failureRate ?? 0;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 300_000;
    this.#evictionBackoff = options.evictionBackoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    const count = options.nodes ?? 50;
    for (let index = 1; index <= count; index++) {
      const name = `sim-node-${index}`;
      const pods: SimulatedPod[] = [
        { namespace: 'kube-system', name: `node-agent-${name}`, ownerKind: 'DaemonSet' },
      ];
      for (let pod = 1; pod <= 2 + (index % 3); pod++) {
        pods.push({ namespace: 'default', name: `app-${index}-${pod}`, ownerKind: 'ReplicaSet' });
      }
      this.#nodes.set(name, {
        name,
        unschedulable: false,
        labels: { 'kubernetes.io/hostname': name, 'nodebatch.dev/simulated': 'true' },
        taints: [],
        pods,
      });
    }
  }

  /** Names of every node, in creation order. */
  listNodes(): string[] {
    return [...this.#nodes.keys()];
  }

  /** A copy of a node's state, or undefined. */
  getNode(name: string): SimulatedNode | undefined {
    const node = this.#nodes.get(name);
    return node ? structuredClone(node) : undefined;
  }

  /** Adds (or replaces) a node, e.g. one with mirror pods or bare pods for a test or demo. */
  addNode(node: Partial<SimulatedNode> & { name: string }): void {
    validateNodeName(node.name);
    this.#nodes.set(node.name, {
      unschedulable: false,
      labels: {},
      taints: [],
      pods: [],
      ...structuredClone(node),
    });
  }

  /** Makes evictions of `namespace/name` answer "blocked" `times` times (or forever), like a PDB. */
  blockEviction(pod: string, times: number | 'forever'): void {
    this.#blockedEvictions.set(pod, times === 'forever' ? Infinity : times);
  }

  async cordon(node: string, options?: CordonOptions): Promise<CordonResult> {
    validateNodeName(node);
    const reason = options?.reason ? validateCordonReason(options.reason) : undefined;
    let alreadyCordoned = false;
    await this.#operate('cordon', node, options, (state) => {
      alreadyCordoned = state.unschedulable;
      if (options?.dryRun) return;
      state.unschedulable = true;
      if (reason) state.annotations = { ...state.annotations, ...cordonAnnotations(reason, this.#clock) };
    });
    return { alreadyCordoned };
  }

  async uncordon(node: string, options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    await this.#operate('uncordon', node, options, (state) => {
      state.unschedulable = false;
      for (const key of Object.values(CORDON_ANNOTATIONS)) delete state.annotations?.[key];
    });
  }

  async addLabels(node: string, labels: Record<string, string>, options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    const valid = validateLabels(labels);
    await this.#operate('addLabels', node, options, (state) => {
      Object.assign(state.labels, valid);
    });
  }

  async removeLabels(node: string, keys: readonly string[], options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    const valid = validateLabelKeys(keys);
    await this.#operate('removeLabels', node, options, (state) => {
      for (const key of valid) delete state.labels[key];
    });
  }

  async addTaints(node: string, taints: readonly Taint[], options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    const valid = validateTaints(taints);
    await this.#operate('addTaints', node, options, (state) => {
      state.taints = mergeTaints(state.taints, valid);
    });
  }

  async removeTaints(node: string, refs: readonly TaintRef[], options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    const valid = validateTaintRefs(refs);
    await this.#operate('removeTaints', node, options, (state) => {
      state.taints = removeTaintRefs(state.taints, valid);
    });
  }

  async readTaints(node: string, options?: OperationOptions): Promise<Taint[]> {
    validateNodeName(node);
    await this.#pause('readTaints', node, options?.signal, this.#latencyMs);
    const source = this.#nodes.get(node);
    if (!source) throw new SourceNodeNotFoundError(node);
    return structuredClone(source.taints);
  }

  async copyTaints(fromNode: string, toNode: string, options?: CopyTaintsOptions): Promise<void> {
    validateNodeName(fromNode, 'fromNode');
    validateNodeName(toNode, 'toNode');
    const taints = copyableTaints(options?.taints ?? (await this.readTaints(fromNode, options)));
    await this.#operate('copyTaints', toNode, options, (state) => {
      state.taints =
        options?.mode === 'replace'
          ? mergeTaints(
              state.taints.filter((taint) => isClusterManagedTaint(taint.key)),
              taints,
            )
          : mergeTaints(state.taints, taints);
    });
  }

  async drain(node: string, options: DrainOptions = {}): Promise<DrainResult> {
    validateNodeName(node);
    validateDrainOptions(options);
    const { signal, onProgress } = options;
    const dryRun = options.dryRun ?? false;
    const timeoutMs = options.timeoutMs ?? this.#drainTimeoutMs;
    const deadline = this.#clock.now() + timeoutMs;
    await this.#operate('drain', node, options, (state) => {
      if (!dryRun) state.unschedulable = true;
    });
    const state = this.#requireNode('drain', node);
    const selector = parseLabelSelector(options.podSelector ?? '');
    const candidates = state.pods.filter((pod) => matchesLabelSelector(selector, pod.labels));
    const selection = selectPodsToDrain(
      candidates.map(asCandidatePod),
      {
        force: options.force ?? false,
        deleteEmptyDirData: options.deleteEmptyDirData ?? false,
        skipWaitForDeleteTimeoutSeconds: options.skipWaitForDeleteTimeoutSeconds ?? 0,
      },
      // The simulated cluster has no orphaned DaemonSet pods: every DaemonSet exists.
      () => true,
      this.#clock.now(),
    );
    if (selection.refused.length > 0 && !dryRun) throw new DrainRefusedError(node, selection.refused);
    const skipped: SkippedPod[] = selection.left.map((entry) => ({ pod: entry.pod, reason: entry.reason }));
    const toEvict = selection.remove.map((candidate) =>
      candidates.find((pod) => podKey(pod) === candidateKey(candidate))!,
    );
    const total = toEvict.length;
    const evicted: string[] = [];
    onProgress?.({
      done: 0,
      total,
      message: `${dryRun ? '(dry run) ' : ''}${describeDrainStart(total, skipped, options.disableEviction ? 'delete' : 'evict')}`,
    });
    const blocked = selection.refused.flatMap((group) =>
      group.pods.map((pod) => ({ pod, reason: `cannot delete ${group.message}` })),
    );
    for (const pod of toEvict) {
      if (!dryRun) {
        await this.#evict(node, pod, {
          signal,
          deadline,
          timeoutMs,
          remaining: toEvict.slice(evicted.length),
          bypassBudgets: options.disableEviction ?? false,
          onProgress: (message) => onProgress?.({ done: evicted.length, total, message }),
        });
      }
      evicted.push(podKey(pod));
      onProgress?.({
        done: evicted.length,
        total,
        message: `${dryRun ? '(dry run) would evict' : 'evicted'} pod ${podKey(pod)}`,
      });
    }
    return { evicted, skipped, dryRun, blocked, deleted: options.disableEviction ?? false };
  }

  async #evict(
    node: string,
    pod: SimulatedPod,
    context: {
      signal?: AbortSignal | undefined;
      deadline: number;
      timeoutMs: number;
      remaining: SimulatedPod[];
      bypassBudgets: boolean;
      onProgress: (message: string) => void;
    },
  ): Promise<void> {
    const key = podKey(pod);
    for (let attempt = 1; ; attempt++) {
      await this.#pause('drain', node, context.signal, this.#latencyMs);
      const blocked = context.bypassBudgets ? 0 : (this.#blockedEvictions.get(key) ?? 0);
      if (blocked <= 0) break;
      this.#blockedEvictions.set(key, blocked - 1);
      const delay = evictionDelay(attempt, this.#evictionBackoff, this.#random);
      if (this.#clock.now() + delay > context.deadline) {
        throw new DrainTimeoutError(node, context.timeoutMs, {
          blocked: context.remaining.map((remaining) => ({
            pod: podKey(remaining),
            budget: `${remaining.name}-pdb`,
          })),
          terminating: [],
        });
      }
      context.onProgress(
        `eviction of pod ${key} refused: disruption budget ${pod.name}-pdb does not allow it now; retrying in ${Math.ceil(delay / 1000)} s`,
      );
      await this.#pause('drain', node, context.signal, delay);
    }
    const state = this.#requireNode('drain', node);
    const before = state.pods.length;
    state.pods = state.pods.filter((candidate) => podKey(candidate) !== key);
    // Already gone (another drain of this node evicted it): like an eviction answered 404, nothing to recreate.
    if (state.pods.length < before) this.#reschedule(pod, node);
  }

  /** Recreates an evicted pod elsewhere, as its ReplicaSet would; bare pods are gone for good. */
  #reschedule(pod: SimulatedPod, fromNode: string): void {
    if (!pod.ownerKind) return;
    const targets = [...this.#nodes.values()].filter((node) => !node.unschedulable && node.name !== fromNode);
    const target = targets[Math.floor(this.#random() * targets.length)];
    if (!target) return;
    const base = pod.name.replace(/-r\d+$/, '');
    target.pods.push({ ...pod, name: `${base}-r${++this.#podCounter}` });
  }

  async #operate(
    operation: string,
    node: string,
    options: OperationOptions | undefined,
    change: (state: SimulatedNode) => void,
  ): Promise<void> {
    await this.#pause(operation, node, options?.signal, this.#latencyMs);
    const state = this.#requireNode(operation, node);
    if (this.#failureRate > 0 && this.#random() < this.#failureRate) {
      this.#logger?.debug({ node, operation }, 'simulated failure');
      throw new KubeOperationError(
        `${operation} of node "${node}" failed: simulated API server error (503)`,
        {
          code: 'SIMULATED_FAILURE',
          operation,
          node,
          statusCode: 503,
          retryable: true,
        },
      );
    }
    change(state);
  }

  #requireNode(operation: string, node: string): SimulatedNode {
    const state = this.#nodes.get(node);
    if (!state) {
      throw new KubeOperationError(`${operation} failed: node "${node}" not found in the simulated cluster`, {
        code: 'NODE_NOT_FOUND',
        operation,
        node,
        statusCode: 404,
        retryable: false,
      });
    }
    return state;
  }

  async #pause(operation: string, node: string, signal: AbortSignal | undefined, ms: number): Promise<void> {
    if (signal?.aborted) throw new OperationAbortedError(operation, node, { cause: signal.reason });
    if (ms <= 0) return;
    try {
      await this.#clock.sleep(ms, signal);
    } catch (error) {
      if (signal?.aborted) throw new OperationAbortedError(operation, node, { cause: signal.reason });
      throw error;
    }
  }
}

function podKey(pod: SimulatedPod): string {
  return `${pod.namespace}/${pod.name}`;
}

/** A simulated pod in the shape kubectl's filters read. */
function asCandidatePod(pod: SimulatedPod): DrainCandidatePod {
  return {
    metadata: {
      name: pod.name,
      namespace: pod.namespace,
      ...(pod.mirror ? { annotations: { [MIRROR_POD_ANNOTATION]: 'simulated' } } : {}),
      ...(pod.ownerKind
        ? {
            ownerReferences: [
              {
                apiVersion:
                  pod.ownerKind === 'DaemonSet' || pod.ownerKind === 'ReplicaSet' ? 'apps/v1' : 'v1',
                kind: pod.ownerKind,
                name: `${pod.name}-owner`,
                controller: true,
              },
            ],
          }
        : {}),
    },
    spec: { volumes: pod.emptyDir ? [{ emptyDir: {} }] : [] },
    status: { phase: pod.phase ?? 'Running' },
  };
}

import {
  AppsV1Api,
  CoreV1Api,
  Observable,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  type KubeConfig,
  type ObservableMiddleware,
  type V1Pod,
  type V1Taint,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import { KubeOperationError, OperationAbortedError, SourceNodeNotFoundError } from './errors.js';
import { statusCauses, statusOf, toKubeOperationError } from './kube-api-error.js';
import {
  CORDON_ANNOTATIONS,
  type CordonOptions,
  type CordonResult,
  type CopyTaintsOptions,
  type DrainOptions,
  type DrainResult,
  type NodeOperator,
  type OperationOptions,
  type Taint,
  type TaintRef,
} from './node-operator.js';
import { cordonAnnotations, validateCordonReason } from './cordon-reason.js';
import { drainNode, type DrainApi } from './kubernetes-drain.js';
import { copyableTaints, isClusterManagedTaint, mergeTaints, removeTaintRefs, sameTaints } from './taints.js';
import {
  validateLabelKeys,
  validateLabels,
  validateNodeName,
  validateTaintRefs,
  validateTaints,
} from './validation.js';

export interface KubernetesNodeOperatorOptions {
  kubeConfig: KubeConfig;
  logger?: Logger;
  /** Re-reads and retries of a taint change answered 409 (someone else changed the node). Default 5. */
  conflictRetries?: number;
  /** Drain time limit per node when the caller gives none, ms. Default 300000. */
  drainTimeoutMs?: number;
  /** Backoff between retries of an eviction answered 429 or 5xx. Default 1000 ms doubling to 30000 ms. */
  evictionBackoff?: { initialMs: number; maxMs: number };
  /** Retries of one eviction answered 5xx before the drain fails (retryable). Default 3. */
  evictionServerErrorRetries?: number;
  /** Evictions in flight at once on one node. Default 5. */
  evictionConcurrency?: number;
  /** Interval between reads of each removed pod while waiting for it to go (kubectl: 1 s). Default 1000. */
  deletionPollMs?: number;
  /** Sent as `fieldManager` with every patch, so managedFields name who changed the node. Default 'nodebatch'. */
  fieldManager?: string;
  clock?: Clock;
  /** Jitter source for backoff. Default Math.random. */
  random?: () => number;
}

/**
 * NodeOperator over the Kubernetes API (client-node). Cordon, uncordon and labels are merge
 * patches (no read needed: they touch only their own keys); taints are read, changed and written
 * back with the read resourceVersion, so a concurrent change answers 409 and is retried on a fresh
 * read. Drain evicts through the Eviction API so PodDisruptionBudgets are honoured.
 */
export class KubernetesNodeOperator implements NodeOperator {
  readonly kind = 'kubernetes' as const;
  readonly #api: CoreV1Api;
  readonly #apps: AppsV1Api;
  readonly #server: string | undefined;
  readonly #logger: Logger | undefined;
  readonly #conflictRetries: number;
  readonly #drainTimeoutMs: number;
  readonly #evictionBackoff: { initialMs: number; maxMs: number };
  readonly #evictionServerErrorRetries: number;
  readonly #evictionConcurrency: number;
  readonly #deletionPollMs: number;
  readonly #fieldManager: string;
  readonly #clock: Clock;
  readonly #random: () => number;

  constructor(options: KubernetesNodeOperatorOptions) {
    this.#api = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#apps = options.kubeConfig.makeApiClient(AppsV1Api);
    this.#server = options.kubeConfig.getCurrentCluster()?.server;
    this.#logger = options.logger?.child({ component: 'kube' });
    this.#conflictRetries = options.conflictRetries ?? 5;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 300_000;
    this.#evictionBackoff = options.evictionBackoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.#evictionServerErrorRetries = options.evictionServerErrorRetries ?? 3;
    this.#evictionConcurrency = Math.max(1, options.evictionConcurrency ?? 5);
    this.#deletionPollMs = options.deletionPollMs ?? 1000;
    this.#fieldManager = options.fieldManager ?? 'nodebatch';
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
  }

  async cordon(node: string, options?: CordonOptions): Promise<CordonResult> {
    validateNodeName(node);
    const reason = options?.reason ? validateCordonReason(options.reason) : undefined;
    // Read first only to say whether the node was already cordoned; the patch does not depend on it.
    const before = await this.#call('cordon', node, 'reading the node', options?.signal, (opts) =>
      this.#api.readNode({ name: node }, opts),
    );
    // One patch: the cordon and who/when/why land together or not at all.
    await this.#mergePatch(
      'cordon',
      node,
      {
        spec: { unschedulable: true },
        ...(reason ? { metadata: { annotations: cordonAnnotations(reason, this.#clock) } } : {}),
      },
      options?.signal,
      options?.dryRun ?? false,
    );
    return { alreadyCordoned: before.spec?.unschedulable === true };
  }

  async uncordon(node: string, options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    // null removes the field, as `kubectl uncordon` does (false is its default), and the reason with it.
    await this.#mergePatch(
      'uncordon',
      node,
      {
        spec: { unschedulable: null },
        metadata: {
          annotations: Object.fromEntries(Object.values(CORDON_ANNOTATIONS).map((key) => [key, null])),
        },
      },
      options?.signal,
    );
  }

  async addLabels(node: string, labels: Record<string, string>, options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    const valid = validateLabels(labels);
    if (Object.keys(valid).length === 0) return;
    await this.#mergePatch('addLabels', node, { metadata: { labels: valid } }, options?.signal);
  }

  async removeLabels(node: string, keys: readonly string[], options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    const valid = validateLabelKeys(keys);
    if (valid.length === 0) return;
    // In a merge patch null deletes the key; keys the node lacks are simply not there afterwards.
    const labels = Object.fromEntries(valid.map((key) => [key, null]));
    await this.#mergePatch('removeLabels', node, { metadata: { labels } }, options?.signal);
  }

  async addTaints(node: string, taints: readonly Taint[], options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    const valid = validateTaints(taints);
    await this.#updateTaints('addTaints', node, (current) => mergeTaints(current, valid), options?.signal);
  }

  async removeTaints(node: string, refs: readonly TaintRef[], options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    const valid = validateTaintRefs(refs);
    await this.#updateTaints(
      'removeTaints',
      node,
      (current) => removeTaintRefs(current, valid),
      options?.signal,
    );
  }

  async readTaints(node: string, options?: OperationOptions): Promise<Taint[]> {
    validateNodeName(node);
    try {
      const source = await this.#api.readNode({ name: node }, requestOptions(options?.signal));
      // timeAdded belongs to the source's history; a copy is a new taint.
      return (source.spec?.taints ?? []).map((taint) => toTaint(taint, false));
    } catch (error) {
      if (options?.signal?.aborted)
        throw new OperationAbortedError('readTaints', node, { cause: options.signal.reason });
      if (statusOf(error) === 404) throw new SourceNodeNotFoundError(node, { cause: error });
      throw toKubeOperationError(error, {
        operation: 'readTaints',
        node,
        what: 'reading the node',
        server: this.#server,
      });
    }
  }

  async copyTaints(fromNode: string, toNode: string, options?: CopyTaintsOptions): Promise<void> {
    validateNodeName(fromNode, 'fromNode');
    validateNodeName(toNode, 'toNode');
    const taints = options?.taints ?? (await this.readTaints(fromNode, options));
    const copied = copyableTaints(taints);
    const mode = options?.mode ?? 'merge';
    await this.#updateTaints(
      'copyTaints',
      toNode,
      // replace keeps the cluster's own taints of the target: nodebatch never owns those.
      (current) =>
        mode === 'replace'
          ? mergeTaints(
              current.filter((taint) => isClusterManagedTaint(taint.key)),
              copied,
            )
          : mergeTaints(current, copied),
      options?.signal,
    );
  }

  async drain(node: string, options: DrainOptions = {}): Promise<DrainResult> {
    validateNodeName(node);
    const { signal } = options;
    const readFailure = (error: unknown, what: string) => {
      if (signal?.aborted) return new OperationAbortedError('drain', node, { cause: signal.reason });
      return toKubeOperationError(error, {
        operation: 'drain',
        node,
        what,
        target: 'other',
        server: this.#server,
      });
    };
    const api: DrainApi = {
      cordon: async (dryRun) => {
        await this.#mergePatch('drain', node, { spec: { unschedulable: true } }, signal, dryRun);
      },
      listPods: (labelSelector) => this.#listPods(node, signal, labelSelector),
      daemonSetExists: async (namespace, name) => {
        try {
          await this.#apps.readNamespacedDaemonSet({ name, namespace }, requestOptions(signal));
          return true;
        } catch (error) {
          if (statusOf(error) === 404) return false;
          throw readFailure(error, `reading DaemonSet ${namespace}/${name}`);
        }
      },
      readPod: async (namespace, name) => {
        try {
          return await this.#api.readNamespacedPod({ name, namespace }, requestOptions(signal));
        } catch (error) {
          if (statusOf(error) === 404) return undefined;
          throw readFailure(error, `reading pod ${namespace}/${name}`);
        }
      },
      evict: async (pod, deleteOptions) => {
        const body = {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name: pod.name, namespace: pod.namespace },
          ...(Object.keys(deleteOptions).length > 0 ? { deleteOptions } : {}),
        };
        await this.#api.createNamespacedPodEviction(
          { name: pod.name, namespace: pod.namespace, body },
          requestOptions(signal),
        );
      },
      deletePod: async (pod, deleteOptions) => {
        await this.#api.deleteNamespacedPod(
          {
            name: pod.name,
            namespace: pod.namespace,
            ...(deleteOptions.dryRun ? { dryRun: 'All' } : {}),
            ...(deleteOptions.gracePeriodSeconds === undefined
              ? {}
              : { gracePeriodSeconds: deleteOptions.gracePeriodSeconds }),
          },
          requestOptions(signal),
        );
      },
      failureOf: (error) => ({ status: statusOf(error), causes: statusCauses(error) }),
      toError: (error, what) => readFailure(error, what),
    };
    return drainNode(node, api, options, {
      timeoutMs: this.#drainTimeoutMs,
      evictionBackoff: this.#evictionBackoff,
      evictionServerErrorRetries: this.#evictionServerErrorRetries,
      evictionConcurrency: this.#evictionConcurrency,
      deletionPollMs: this.#deletionPollMs,
      clock: this.#clock,
      random: this.#random,
      logger: this.#logger,
    });
  }

  async #listPods(node: string, signal: AbortSignal | undefined, labelSelector?: string): Promise<V1Pod[]> {
    const items: V1Pod[] = [];
    let next: string | undefined;
    // Paged as kubectl does (limit + continue), so a node with thousands of pods is not one huge answer.
    do {
      const list = await this.#call('drain', node, 'listing the pods on the node', signal, (opts) =>
        this.#api.listPodForAllNamespaces(
          {
            fieldSelector: `spec.nodeName=${node}`,
            ...(labelSelector ? { labelSelector } : {}),
            limit: 500,
            ...(next ? { _continue: next } : {}),
          },
          opts,
        ),
      );
      items.push(...list.items);
      next = list.metadata?._continue || undefined;
    } while (next);
    return items;
  }

  /** Read, change, write back with the read resourceVersion; a 409 means re-read and try again. */
  async #updateTaints(
    operation: string,
    node: string,
    change: (current: Taint[]) => Taint[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.#call(operation, node, 'reading the node', signal, (opts) =>
        this.#api.readNode({ name: node }, opts),
      );
      const before = (current.spec?.taints ?? []).map((taint) => toTaint(taint, true));
      const after = change(before);
      if (sameTaints(before, after)) return;
      const patch = {
        // The API server refuses the patch with 409 when the node changed since this read.
        metadata: { resourceVersion: current.metadata?.resourceVersion },
        spec: { taints: after.length > 0 ? after : null },
      };
      try {
        await this.#mergePatch(operation, node, patch, signal);
        return;
      } catch (error) {
        if (
          !(error instanceof KubeOperationError && error.statusCode === 409) ||
          attempt > this.#conflictRetries
        ) {
          throw error;
        }
        this.#logger?.debug({ node, operation, attempt }, 'node changed concurrently, re-reading');
      }
    }
  }

  async #mergePatch(
    operation: string,
    node: string,
    body: object,
    signal: AbortSignal | undefined,
    dryRun = false,
  ): Promise<void> {
    await this.#call(operation, node, 'patching the node', signal, (opts) =>
      this.#api.patchNode(
        { name: node, body, fieldManager: this.#fieldManager, ...(dryRun ? { dryRun: 'All' } : {}) },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch, opts),
      ),
    );
  }

  async #call<T>(
    operation: string,
    node: string,
    what: string,
    signal: AbortSignal | undefined,
    request: (options: ConfigurationOptions<ObservableMiddleware>) => Promise<T>,
  ): Promise<T> {
    if (signal?.aborted) throw new OperationAbortedError(operation, node, { cause: signal.reason });
    try {
      return await request(requestOptions(signal));
    } catch (error) {
      if (signal?.aborted) throw new OperationAbortedError(operation, node, { cause: signal.reason });
      throw toKubeOperationError(error, { operation, node, what, server: this.#server });
    }
  }
}

/** Per-request options: the caller's AbortSignal reaches fetch, so an abort cancels a request in flight. */
function requestOptions(signal: AbortSignal | undefined): ConfigurationOptions<ObservableMiddleware> {
  if (!signal) return {};
  const middleware: ObservableMiddleware = {
    pre: (context) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/** A taint as the API has it, keeping timeAdded (RFC 3339, seconds) when asked so a rewrite preserves it. */
function toTaint(taint: V1Taint, keepTimeAdded: boolean): Taint {
  const result: Taint & { timeAdded?: string } = { key: taint.key, effect: taint.effect as Taint['effect'] };
  if (taint.value !== undefined && taint.value !== '') result.value = taint.value;
  if (keepTimeAdded && taint.timeAdded) {
    const time = taint.timeAdded instanceof Date ? taint.timeAdded : new Date(String(taint.timeAdded));
    result.timeAdded = time.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return result;
}

import {
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
import { evictionDelay, systemClock, type Clock } from './clock.js';
import {
  DrainTimeoutError,
  InvalidNodeInputError,
  KubeOperationError,
  OperationAbortedError,
} from './errors.js';
import { statusOf, toKubeOperationError } from './kube-api-error.js';
import type {
  DrainOptions,
  DrainResult,
  NodeOperator,
  OperationOptions,
  SkippedPod,
  Taint,
  TaintRef,
} from './node-operator.js';
import { describeDrainStart } from './drain-messages.js';
import { mergeTaints, removeTaintRefs, sameTaints } from './taints.js';
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
  /** Interval between pod listings while waiting for evicted pods to go (waitForDeletion). Default 2000. */
  deletionPollMs?: number;
  /** Sent as `fieldManager` with every patch, so managedFields name who changed the node. Default 'nodebatch'. */
  fieldManager?: string;
  clock?: Clock;
  /** Jitter source for backoff. Default Math.random. */
  random?: () => number;
}

const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

interface EvictablePod {
  key: string;
  namespace: string;
  name: string;
  uid: string | undefined;
}

/** Marks an eviction still blocked at the drain's deadline; turned into DrainTimeoutError with the pods left. */
class EvictionDeadline extends Error {}

/**
 * NodeOperator over the Kubernetes API (client-node). Cordon, uncordon and labels are merge
 * patches (no read needed: they touch only their own keys); taints are read, changed and written
 * back with the read resourceVersion, so a concurrent change answers 409 and is retried on a fresh
 * read. Drain evicts through the Eviction API so PodDisruptionBudgets are honoured.
 */
export class KubernetesNodeOperator implements NodeOperator {
  readonly kind = 'kubernetes' as const;
  readonly #api: CoreV1Api;
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
    this.#server = options.kubeConfig.getCurrentCluster()?.server;
    this.#logger = options.logger?.child({ component: 'kube' });
    this.#conflictRetries = options.conflictRetries ?? 5;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 300_000;
    this.#evictionBackoff = options.evictionBackoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.#evictionServerErrorRetries = options.evictionServerErrorRetries ?? 3;
    this.#evictionConcurrency = Math.max(1, options.evictionConcurrency ?? 5);
    this.#deletionPollMs = options.deletionPollMs ?? 2000;
    this.#fieldManager = options.fieldManager ?? 'nodebatch';
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
  }

  async cordon(node: string, options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    await this.#mergePatch('cordon', node, { spec: { unschedulable: true } }, options?.signal);
  }

  async uncordon(node: string, options?: OperationOptions): Promise<void> {
    validateNodeName(node);
    // null removes the field, as `kubectl uncordon` does (false is its default).
    await this.#mergePatch('uncordon', node, { spec: { unschedulable: null } }, options?.signal);
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

  async copyTaints(fromNode: string, toNode: string, options?: OperationOptions): Promise<void> {
    validateNodeName(fromNode, 'fromNode');
    validateNodeName(toNode, 'toNode');
    const source = await this.#call(
      'copyTaints',
      toNode,
      `reading source node "${fromNode}"`,
      options?.signal,
      (opts) => this.#api.readNode({ name: fromNode }, opts),
    );
    // timeAdded belongs to the source's history; the target's copy is a new taint.
    const taints = (source.spec?.taints ?? []).map((taint) => toTaint(taint, false));
    await this.#updateTaints(
      'copyTaints',
      toNode,
      (current) => mergeTaints(current, taints),
      options?.signal,
    );
  }

  async drain(node: string, options: DrainOptions = {}): Promise<DrainResult> {
    validateNodeName(node);
    const { signal, onProgress, gracePeriodSeconds } = options;
    if (
      gracePeriodSeconds !== undefined &&
      !(Number.isInteger(gracePeriodSeconds) && gracePeriodSeconds >= 0)
    ) {
      throw new InvalidNodeInputError([
        {
          path: 'gracePeriodSeconds',
          message: `must be a whole number of seconds >= 0, got ${gracePeriodSeconds}`,
        },
      ]);
    }
    const timeoutMs = options.timeoutMs ?? this.#drainTimeoutMs;
    const deadline = this.#clock.now() + timeoutMs;

    await this.#mergePatch('drain', node, { spec: { unschedulable: true } }, signal);
    const pods = await this.#listPods(node, signal);
    const skipped: SkippedPod[] = [];
    const toEvict: EvictablePod[] = [];
    for (const pod of pods) {
      const key = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
      if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined)
        skipped.push({ pod: key, reason: 'mirror' });
      else if (
        pod.metadata?.ownerReferences?.some((owner) => owner.kind === 'DaemonSet' && owner.controller)
      ) {
        skipped.push({ pod: key, reason: 'daemonset' });
      } else {
        toEvict.push({
          key,
          namespace: pod.metadata?.namespace ?? '',
          name: pod.metadata?.name ?? '',
          uid: pod.metadata?.uid,
        });
      }
    }
    const total = toEvict.length;
    onProgress?.({ done: 0, total, message: describeDrainStart(total, skipped) });

    // One failed eviction stops the others: the drain has failed, no point evicting more.
    const stop = new AbortController();
    const combined = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    const queue = [...toEvict];
    const evicted: EvictablePod[] = [];
    let failure: unknown;
    const runEvictions = async () => {
      for (let pod = queue.shift(); pod && !combined.aborted; pod = queue.shift()) {
        try {
          const outcome = await this.#evict(node, pod, { signal: combined, deadline, gracePeriodSeconds });
          evicted.push(pod);
          onProgress?.({
            done: evicted.length,
            total,
            message: outcome === 'gone' ? `pod ${pod.key} was already gone` : `evicted pod ${pod.key}`,
          });
        } catch (error) {
          if (failure === undefined && !signal?.aborted) {
            failure = error;
            stop.abort(error);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#evictionConcurrency, total) }, runEvictions));

    if (signal?.aborted) throw new OperationAbortedError('drain', node, { cause: signal.reason });
    if (failure !== undefined) {
      if (failure instanceof EvictionDeadline) {
        const done = new Set(evicted.map((pod) => pod.key));
        throw new DrainTimeoutError(
          node,
          timeoutMs,
          toEvict.filter((pod) => !done.has(pod.key)).map((pod) => pod.key),
        );
      }
      throw failure;
    }
    if (options.waitForDeletion) await this.#waitUntilGone(node, evicted, { signal, deadline, timeoutMs });
    return { evicted: evicted.map((pod) => pod.key), skipped };
  }

  /** Evicts one pod: 'evicted', or 'gone' when the API says it no longer exists. */
  async #evict(
    node: string,
    pod: EvictablePod,
    context: { signal: AbortSignal; deadline: number; gracePeriodSeconds: number | undefined },
  ): Promise<'evicted' | 'gone'> {
    const body = {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name: pod.name, namespace: pod.namespace },
      ...(context.gracePeriodSeconds === undefined
        ? {}
        : { deleteOptions: { gracePeriodSeconds: context.gracePeriodSeconds } }),
    };
    let serverErrors = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#api.createNamespacedPodEviction(
          { name: pod.name, namespace: pod.namespace, body },
          requestOptions(context.signal),
        );
        return 'evicted';
      } catch (error) {
        if (context.signal.aborted)
          throw new OperationAbortedError('drain', node, { cause: context.signal.reason });
        const status = statusOf(error);
        if (status === 404) return 'gone';
        const blocked = status === 429;
        const transient =
          status !== undefined && status >= 500 && serverErrors++ < this.#evictionServerErrorRetries;
        if (!blocked && !transient) {
          throw toKubeOperationError(error, {
            operation: 'drain',
            node,
            what: `evicting pod ${pod.key}`,
            target: 'other',
            server: this.#server,
          });
        }
        const left = context.deadline - this.#clock.now();
        if (left <= 0) {
          if (blocked) throw new EvictionDeadline();
          throw toKubeOperationError(error, {
            operation: 'drain',
            node,
            what: `evicting pod ${pod.key}`,
            target: 'other',
          });
        }
        const delay = Math.min(left, evictionDelay(attempt, this.#evictionBackoff, this.#random));
        this.#logger?.debug(
          { node, pod: pod.key, status, attempt, delayMs: delay },
          'eviction refused, retrying',
        );
        await this.#sleep('drain', node, delay, context.signal);
      }
    }
  }

  async #waitUntilGone(
    node: string,
    evicted: readonly EvictablePod[],
    context: { signal: AbortSignal | undefined; deadline: number; timeoutMs: number },
  ): Promise<void> {
    for (;;) {
      const present = new Set((await this.#listPods(node, context.signal)).map((pod) => pod.metadata?.uid));
      const remaining = evicted.filter((pod) => pod.uid !== undefined && present.has(pod.uid));
      if (remaining.length === 0) return;
      const left = context.deadline - this.#clock.now();
      if (left <= 0)
        throw new DrainTimeoutError(
          node,
          context.timeoutMs,
          remaining.map((pod) => pod.key),
        );
      await this.#sleep('drain', node, Math.min(left, this.#deletionPollMs), context.signal);
    }
  }

  async #listPods(node: string, signal: AbortSignal | undefined): Promise<V1Pod[]> {
    const list = await this.#call('drain', node, 'listing the pods on the node', signal, (opts) =>
      this.#api.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` }, opts),
    );
    return list.items;
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
  ): Promise<void> {
    await this.#call(operation, node, 'patching the node', signal, (opts) =>
      this.#api.patchNode(
        { name: node, body, fieldManager: this.#fieldManager },
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

  async #sleep(operation: string, node: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.#clock.sleep(ms, signal);
    } catch (error) {
      if (signal?.aborted) throw new OperationAbortedError(operation, node, { cause: signal.reason });
      throw error;
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

import type { Logger } from 'pino';
import { evictionDelay, type Clock } from './clock.js';
import {
  DrainRefusedError,
  DrainTimeoutError,
  InvalidNodeInputError,
  OperationAbortedError,
} from './errors.js';
import {
  daemonSetOf,
  describeRefusal,
  podKey,
  selectPodsToDrain,
  type DrainCandidatePod,
} from './drain-filters.js';
import { describeDrainStart } from './drain-messages.js';
import { LabelSelectorSyntaxError, parseLabelSelector } from './label-selector.js';
import type { BlockedPod, DrainOptions, DrainResult, SkippedPod } from './node-operator.js';

/** A failed API call as the drain needs to see it: the HTTP status and the Status body's causes. */
export interface DrainApiFailure {
  status: number | undefined;
  /** metav1.Status details.causes[].type / .message. */
  causes: { type?: string; reason?: string; message?: string }[];
}

/** The Kubernetes calls a drain makes; the operator supplies them with its error mapping. */
export interface DrainApi {
  cordon(dryRun: boolean): Promise<void>;
  listPods(labelSelector: string | undefined): Promise<DrainCandidatePod[]>;
  /** Whether the DaemonSet exists (false on 404; other failures throw). */
  daemonSetExists(namespace: string, name: string): Promise<boolean>;
  /** Undefined when the pod does not exist. */
  readPod(namespace: string, name: string): Promise<DrainCandidatePod | undefined>;
  /** POST the policy/v1 Eviction; rejects with the raw client error. */
  evict(pod: PodRef, deleteOptions: { gracePeriodSeconds?: number; dryRun?: string[] }): Promise<void>;
  /** DELETE the pod; rejects with the raw client error. */
  deletePod(pod: PodRef, options: { gracePeriodSeconds?: number; dryRun: boolean }): Promise<void>;
  /** The status and causes of a raw client error. */
  failureOf(error: unknown): DrainApiFailure;
  /** The raw client error as the operator reports it (KubeOperationError). */
  toError(error: unknown, what: string): Error;
}

export interface PodRef {
  key: string;
  namespace: string;
  name: string;
  uid: string | undefined;
}

interface DrainTuning {
  timeoutMs: number;
  evictionBackoff: { initialMs: number; maxMs: number };
  evictionServerErrorRetries: number;
  evictionConcurrency: number;
  deletionPollMs: number;
  clock: Clock;
  random: () => number;
  logger: Logger | undefined;
}

/** Status cause type of a 403 for a write into a namespace being deleted (corev1.NamespaceTerminatingCause). */
const NAMESPACE_TERMINATING_CAUSE = 'NamespaceTerminating';

/** `The disruption budget web-pdb needs 2 healthy pods ...` → `web-pdb`. */
function budgetName(failure: DrainApiFailure): string | undefined {
  for (const cause of failure.causes) {
    const match = /disruption budget ([^\s]+)/i.exec(cause.message ?? '');
    if (match) return match[1];
  }
  return undefined;
}

/** Checks the drain options a caller may get wrong; InvalidNodeInputError names each. */
export function validateDrainOptions(options: DrainOptions): void {
  const issues: { path: string; message: string }[] = [];
  const wholeSeconds = (path: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
      issues.push({ path, message: `must be a whole number of seconds >= 0, got ${value}` });
    }
  };
  wholeSeconds('gracePeriodSeconds', options.gracePeriodSeconds);
  wholeSeconds('skipWaitForDeleteTimeoutSeconds', options.skipWaitForDeleteTimeoutSeconds);
  if (options.timeoutMs !== undefined && !(options.timeoutMs > 0)) {
    issues.push({ path: 'timeoutMs', message: `must be > 0, got ${options.timeoutMs}` });
  }
  if (options.podSelector !== undefined) {
    try {
      parseLabelSelector(options.podSelector);
    } catch (error) {
      if (!(error instanceof LabelSelectorSyntaxError)) throw error;
      issues.push({ path: 'podSelector', message: error.message });
    }
  }
  if (issues.length > 0) throw new InvalidNodeInputError(issues);
}

/**
 * One node's drain, as `kubectl drain --ignore-daemonsets` runs it: cordon, list, gate, evict
 * (or delete), wait until the pods are gone. Every wait is reported through onProgress so a user
 * sees why a node takes long, not only a debug log.
 */
export async function drainNode(
  node: string,
  api: DrainApi,
  options: DrainOptions,
  tuning: DrainTuning,
): Promise<DrainResult> {
  validateDrainOptions(options);
  const { signal, onProgress, gracePeriodSeconds } = options;
  const dryRun = options.dryRun ?? false;
  const deleted = options.disableEviction ?? false;
  const skipWaitSeconds = options.skipWaitForDeleteTimeoutSeconds ?? 0;
  const { clock } = tuning;
  const timeoutMs = options.timeoutMs ?? tuning.timeoutMs;
  const deadline = clock.now() + timeoutMs;
  const checkAborted = () => {
    if (signal?.aborted) throw new OperationAbortedError('drain', node, { cause: signal.reason });
  };
  const sleep = async (ms: number) => {
    try {
      await clock.sleep(ms, signal);
    } catch (error) {
      checkAborted();
      throw error;
    }
  };

  await api.cordon(dryRun);
  const pods = await api.listPods(options.podSelector?.trim() || undefined);

  const daemonSets = new Map<string, boolean>();
  for (const pod of pods) {
    const owner = daemonSetOf(pod);
    const id = `${pod.metadata?.namespace ?? ''}/${owner}`;
    if (owner !== undefined && !daemonSets.has(id)) {
      daemonSets.set(id, await api.daemonSetExists(pod.metadata?.namespace ?? '', owner));
    }
  }
  const selection = selectPodsToDrain(
    pods,
    {
      force: options.force ?? false,
      deleteEmptyDirData: options.deleteEmptyDirData ?? false,
      skipWaitForDeleteTimeoutSeconds: skipWaitSeconds,
    },
    (pod) => daemonSets.get(`${pod.metadata?.namespace ?? ''}/${daemonSetOf(pod)}`) ?? false,
    clock.now(),
  );
  const skipped: SkippedPod[] = selection.left.map((entry) => ({ pod: entry.pod, reason: entry.reason }));
  const blocked: BlockedPod[] = selection.refused.flatMap((group) =>
    group.pods.map((pod) => ({ pod, reason: `cannot delete ${group.message}` })),
  );
  // kubectl evicts nothing while any pod is refused: a half-drained node helps nobody.
  if (selection.refused.length > 0 && !dryRun) throw new DrainRefusedError(node, selection.refused);

  const toRemove: PodRef[] = selection.remove.map((pod) => ({
    key: podKey(pod),
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    uid: pod.metadata?.uid,
  }));
  const total = toRemove.length;
  const verb = deleted ? 'delete' : 'evict';
  onProgress?.({
    done: 0,
    total,
    message: `${dryRun ? '(dry run) ' : ''}${describeDrainStart(total, skipped, verb)}${
      dryRun && selection.refused.length > 0
        ? `; would be refused: ${describeRefusal(selection.refused)}`
        : ''
    }`,
  });

  const removed: PodRef[] = [];
  /** Removed pods to wait for: not those the API already said were gone (404). */
  const toWaitFor: PodRef[] = [];
  /** Pods whose eviction a budget refused at their last attempt, with the budget's name. */
  const refusedByBudget = new Map<string, string | undefined>();
  const stop = new AbortController();
  const combined = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  let failure: unknown;

  /** Removes one pod: 'removed', 'gone' (404), or 'blocked' (dry run refused by a budget). */
  const removeOne = async (pod: PodRef): Promise<'removed' | 'gone' | 'blocked'> => {
    let serverErrors = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        if (deleted) {
          await api.deletePod(pod, {
            dryRun,
            ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }),
          });
        } else {
          await api.evict(pod, {
            ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }),
            ...(dryRun ? { dryRun: ['All'] } : {}),
          });
        }
        refusedByBudget.delete(pod.key);
        return 'removed';
      } catch (error) {
        if (combined.aborted) {
          checkAborted();
          throw error;
        }
        const answer = api.failureOf(error);
        if (answer.status === 404) return 'gone';
        let wait: string;
        if (answer.status === 429) {
          const budget = budgetName(answer);
          if (dryRun) {
            blocked.push({
              pod: pod.key,
              reason: `a disruption budget${budget ? ` (${budget})` : ''} refuses its eviction`,
            });
            return 'blocked';
          }
          refusedByBudget.set(pod.key, budget);
          wait = `eviction of pod ${pod.key} refused: disruption budget ${budget ?? '(name not given)'} does not allow it now`;
        } else if (
          answer.status === 403 &&
          answer.causes.some((cause) => cause.type === NAMESPACE_TERMINATING_CAUSE)
        ) {
          // As kubectl: the namespace is being deleted, so the eviction can never succeed; once the
          // pod itself is terminating, wait for it to go, else try again until it is.
          const fresh = await api.readPod(pod.namespace, pod.name);
          if (!fresh || (pod.uid && fresh.metadata?.uid !== pod.uid)) return 'gone';
          if (fresh.metadata?.deletionTimestamp) return 'removed';
          wait = `pod ${pod.key} is in terminating namespace "${pod.namespace}"; waiting until it is deleted with it`;
        } else if (
          answer.status !== undefined &&
          answer.status >= 500 &&
          serverErrors++ < tuning.evictionServerErrorRetries
        ) {
          wait = `${verb} of pod ${pod.key} answered HTTP ${answer.status}; retrying`;
        } else {
          throw api.toError(error, `${deleted ? 'deleting' : 'evicting'} pod ${pod.key}`);
        }
        const left = deadline - clock.now();
        if (left <= 0) throw new DrainDeadline();
        const delay = Math.min(left, evictionDelay(attempt, tuning.evictionBackoff, tuning.random));
        onProgress?.({
          done: removed.length,
          total,
          message: `${wait}; retrying in ${Math.ceil(delay / 1000)} s`,
        });
        tuning.logger?.debug(
          { node, pod: pod.key, status: answer.status, attempt, delayMs: delay },
          'pod removal refused, retrying',
        );
        await sleep(delay);
      }
    }
  };

  const queue = [...toRemove];
  const lane = async () => {
    for (let pod = queue.shift(); pod && !combined.aborted; pod = queue.shift()) {
      try {
        const outcome = await removeOne(pod);
        if (outcome === 'blocked') continue;
        removed.push(pod);
        if (outcome === 'removed') toWaitFor.push(pod);
        const what =
          outcome === 'gone'
            ? `pod ${pod.key} was already gone`
            : `${dryRun ? '(dry run) would ' : ''}${deleted ? 'delete' : 'evict'}${dryRun ? '' : 'ed'} pod ${pod.key}`;
        onProgress?.({ done: removed.length, total, message: what });
      } catch (error) {
        if (failure === undefined && !signal?.aborted) {
          failure = error;
          stop.abort(error);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(tuning.evictionConcurrency, total) }, lane));
  checkAborted();
  if (failure !== undefined) {
    if (failure instanceof DrainDeadline) {
      const done = new Set(removed.map((pod) => pod.key));
      throw new DrainTimeoutError(node, timeoutMs, {
        blocked: toRemove
          .filter((pod) => !done.has(pod.key))
          .map((pod) => {
            const budget = refusedByBudget.get(pod.key);
            return budget === undefined ? { pod: pod.key } : { pod: pod.key, budget };
          }),
        terminating: [],
      });
    }
    throw failure;
  }

  const result: DrainResult = {
    evicted: removed.map((pod) => pod.key),
    skipped,
    dryRun,
    blocked,
    deleted,
  };
  if (dryRun) return result;

  // A node counts as drained only once its pods are gone: 404, or a pod of that name with a new UID.
  let pending = [...toWaitFor];
  let announced = false;
  for (;;) {
    const still: PodRef[] = [];
    for (const pod of pending) {
      const current = await api.readPod(pod.namespace, pod.name);
      if (!current || (pod.uid !== undefined && current.metadata?.uid !== pod.uid)) continue;
      const deletion = current.metadata?.deletionTimestamp;
      if (
        skipWaitSeconds > 0 &&
        deletion !== undefined &&
        (clock.now() - new Date(deletion).getTime()) / 1000 > skipWaitSeconds
      ) {
        skipped.push({ pod: pod.key, reason: 'deletion-timed-out' });
        onProgress?.({
          done: removed.length,
          total,
          message: `pod ${pod.key} was deleted more than ${skipWaitSeconds} s ago and is still there; not waiting for it (skipWaitForDeleteTimeoutSeconds)`,
        });
        continue;
      }
      still.push(pod);
    }
    pending = still;
    if (pending.length === 0) break;
    const left = deadline - clock.now();
    if (left <= 0) {
      throw new DrainTimeoutError(node, timeoutMs, {
        blocked: [],
        terminating: pending.map((pod) => pod.key),
      });
    }
    if (!announced) {
      announced = true;
      onProgress?.({
        done: removed.length,
        total,
        message: `waiting for ${pending.length} pod(s) to terminate: ${pending
          .slice(0, 10)
          .map((pod) => pod.key)
          .join(', ')}`,
      });
    }
    await sleep(Math.min(left, tuning.deletionPollMs));
  }
  onProgress?.({ done: removed.length, total, message: `all ${removed.length} removed pod(s) are gone` });
  return result;
}

/** A pod still refused at the drain's deadline; turned into DrainTimeoutError with the pods left. */
class DrainDeadline extends Error {}

/*
 * Which pods a drain removes, which it leaves and which stop it: kubectl's filters
 * (k8s.io/kubectl/pkg/drain/filters.go) in kubectl's order and words, with nodebatch's option
 * names in the hints. DaemonSet pods are always left alone (kubectl's --ignore-daemonsets): their
 * controller would put them straight back.
 */

/** The parts of a core/v1 Pod the filters read. */
export interface DrainCandidatePod {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: Date | string;
    ownerReferences?: { apiVersion: string; kind: string; name: string; controller?: boolean }[];
  };
  spec?: { volumes?: { emptyDir?: unknown }[] };
  status?: { phase?: string };
}

/** The gates of a drain, as DrainOptions names them. */
export interface DrainGates {
  /** Remove pods that declare no controller (and orphaned DaemonSet pods). Default false. */
  force: boolean;
  /** Remove pods with emptyDir volumes (their data is lost). Default false. */
  deleteEmptyDirData: boolean;
  /** Leave pods whose deletion started more than this many seconds ago; 0 = never. */
  skipWaitForDeleteTimeoutSeconds: number;
}

export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

/** kubectl's fatal messages, with nodebatch's option names in place of kubectl's flags. */
export const UNMANAGED_FATAL = 'Pods that declare no controller (use force to override)';
export const LOCAL_STORAGE_FATAL = 'Pods with local storage (use deleteEmptyDirData to override)';

export type LeftPodReason = 'daemonset' | 'mirror' | 'deletion-timed-out';

export interface PodSelection {
  /** Pods to evict (or delete), in the order listed. */
  remove: DrainCandidatePod[];
  /** Pods left on the node, with why. */
  left: { pod: string; reason: LeftPodReason }[];
  /** Pods that stop the drain, grouped by kubectl's fatal message (in filter order). */
  refused: { message: string; pods: string[] }[];
}

export function podKey(pod: DrainCandidatePod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

function isFinished(pod: DrainCandidatePod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

function controllerOf(pod: DrainCandidatePod) {
  return pod.metadata?.ownerReferences?.find((owner) => owner.controller === true);
}

/** The name of the DaemonSet that controls the pod, when one is named (kubectl: apps/v1 DaemonSet). */
export function daemonSetOf(pod: DrainCandidatePod): string | undefined {
  const owner = controllerOf(pod);
  return owner && owner.kind === 'DaemonSet' && owner.apiVersion === 'apps/v1' ? owner.name : undefined;
}

/**
 * Sorts a node's pods as kubectl drain does. `daemonSetExists` answers for each DaemonSet-owned
 * running pod whether its DaemonSet still exists: an orphaned one is a pod nothing will recreate,
 * so it counts as declaring no controller.
 */
export function selectPodsToDrain(
  pods: readonly DrainCandidatePod[],
  gates: DrainGates,
  daemonSetExists: (pod: DrainCandidatePod) => boolean,
  now: number,
): PodSelection {
  const selection: PodSelection = { remove: [], left: [], refused: [] };
  const refuse = (message: string, pod: DrainCandidatePod) => {
    let group = selection.refused.find((entry) => entry.message === message);
    if (!group) selection.refused.push((group = { message, pods: [] }));
    group.pods.push(podKey(pod));
  };
  for (const pod of pods) {
    const key = podKey(pod);
    const deletion = pod.metadata?.deletionTimestamp;
    if (
      gates.skipWaitForDeleteTimeoutSeconds > 0 &&
      deletion !== undefined &&
      (now - new Date(deletion).getTime()) / 1000 > gates.skipWaitForDeleteTimeoutSeconds
    ) {
      selection.left.push({ pod: key, reason: 'deletion-timed-out' });
      continue;
    }
    const finished = isFinished(pod);
    let orphaned = false;
    if (daemonSetOf(pod) !== undefined && !finished) {
      if (daemonSetExists(pod)) {
        selection.left.push({ pod: key, reason: 'daemonset' });
        continue;
      }
      orphaned = true;
    }
    if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) {
      selection.left.push({ pod: key, reason: 'mirror' });
      continue;
    }
    // Finished pods hold nothing worth keeping and run nothing: removed without the gates.
    if (!finished) {
      const hasEmptyDir = (pod.spec?.volumes ?? []).some((volume) => volume.emptyDir != null);
      let blocked = false;
      if (hasEmptyDir && !gates.deleteEmptyDirData) {
        refuse(LOCAL_STORAGE_FATAL, pod);
        blocked = true;
      }
      if ((orphaned || controllerOf(pod) === undefined) && !gates.force) {
        refuse(UNMANAGED_FATAL, pod);
        blocked = true;
      }
      if (blocked) continue;
    }
    selection.remove.push(pod);
  }
  // In kubectl's filter order, whatever order the pods came in, so the message is stable.
  const order = [LOCAL_STORAGE_FATAL, UNMANAGED_FATAL];
  selection.refused.sort((a, b) => order.indexOf(a.message) - order.indexOf(b.message));
  return selection;
}

/** kubectl's refusal text: `cannot delete <why>: ns/a, ns/b`, one sentence per reason. */
export function describeRefusal(refused: readonly { message: string; pods: readonly string[] }[]): string {
  return refused.map((group) => `cannot delete ${group.message}: ${group.pods.join(', ')}`).join('; ');
}

import type { SkippedPod } from './node-operator.js';

/** The first drain progress message: how many pods will be removed and how many are left alone. */
export function describeDrainStart(
  total: number,
  skipped: readonly SkippedPod[],
  verb: 'evict' | 'delete' = 'evict',
): string {
  const daemonsets = skipped.filter((pod) => pod.reason === 'daemonset').length;
  const mirrors = skipped.filter((pod) => pod.reason === 'mirror').length;
  const deleting = skipped.length - daemonsets - mirrors;
  return (
    `${total} pod(s) to ${verb}; skipped ${daemonsets} DaemonSet and ${mirrors} mirror pod(s)` +
    (deleting > 0 ? ` and ${deleting} pod(s) deleted longer ago than skipWaitForDeleteTimeoutSeconds` : '')
  );
}

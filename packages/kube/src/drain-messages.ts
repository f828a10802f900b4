import type { SkippedPod } from './node-operator.js';

/** The first drain progress message: how many pods will be evicted and how many are left alone. */
export function describeDrainStart(total: number, skipped: readonly SkippedPod[]): string {
  const daemonsets = skipped.filter((pod) => pod.reason === 'daemonset').length;
  const mirrors = skipped.length - daemonsets;
  return `${total} pod(s) to evict; skipped ${daemonsets} DaemonSet and ${mirrors} mirror pod(s)`;
}

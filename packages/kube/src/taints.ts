import type { Taint, TaintRef } from './node-operator.js';

/** `current` with `added` set: a taint with the same key and effect is replaced, order otherwise kept. */
export function mergeTaints(current: readonly Taint[], added: readonly Taint[]): Taint[] {
  const result = current.map((taint) => ({ ...taint }));
  for (const taint of added) {
    const index = result.findIndex(
      (existing) => existing.key === taint.key && existing.effect === taint.effect,
    );
    const copy: Taint = { key: taint.key, effect: taint.effect };
    if (taint.value !== undefined && taint.value !== '') copy.value = taint.value;
    if (index >= 0) result[index] = copy;
    else result.push(copy);
  }
  return result;
}

/** `current` without the taints `refs` name (a ref without effect names every effect of its key). */
export function removeTaintRefs(current: readonly Taint[], refs: readonly TaintRef[]): Taint[] {
  return current.filter(
    (taint) =>
      !refs.some((ref) => ref.key === taint.key && (ref.effect === undefined || ref.effect === taint.effect)),
  );
}

/** Whether two taint lists hold the same taints in the same order (so a patch can be skipped). */
export function sameTaints(a: readonly Taint[], b: readonly Taint[]): boolean {
  return (
    a.length === b.length &&
    a.every((taint, index) => {
      const other = b[index]!;
      return (
        taint.key === other.key &&
        taint.effect === other.effect &&
        (taint.value ?? '') === (other.value ?? '')
      );
    })
  );
}

/** Prefixes of taints the cluster sets and clears itself (node lifecycle, cloud provider). */
export const CLUSTER_MANAGED_TAINT_PREFIXES = [
  'node.kubernetes.io/',
  'node.cloudprovider.kubernetes.io/',
] as const;

/** Whether the cluster manages this taint itself (copying it would fight the node controller). */
export function isClusterManagedTaint(key: string): boolean {
  return CLUSTER_MANAGED_TAINT_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/** The taints of a source node that copyTaints carries over: all but the cluster's own. */
export function copyableTaints(taints: readonly Taint[]): Taint[] {
  return taints.filter((taint) => !isClusterManagedTaint(taint.key));
}

import { copyableTaints, isClusterManagedTaint } from '@nodebatch/kube';
import type { NodeInventory } from '@nodebatch/kube';
import { InvalidRequestError } from './errors.js';
import type { TouchedKeys } from './policy.js';

/**
 * The taint keys a `copyFrom` batch would set and drop, for the protected-prefix rule.
 *
 * A batch's params do not say which taints a copy carries: the source node does. They are read here,
 * when the batch is submitted, rather than refused by the worker when it runs, because that is what a
 * user expects of every other protected key: a 403 at once that names the taint and the rule, audited
 * as a refusal, and no task. A refusal at run time would accept the batch (202), then fail it, and
 * record an allowed request for something the policy forbids. The worker reads the source again when
 * the batch starts; a protected taint put on the source in between (which, through nodebatch, only a
 * role allowed protected keys can do) is copied.
 *
 * With `mode: replace` the targets' own taints are dropped too (all but the cluster's), so theirs
 * count as changed keys as well. Cluster-managed taints are never copied nor dropped, as the worker
 * does (copyableTaints).
 */
export async function copiedTaintKeys(
  inventory: NodeInventory,
  params: { copyFrom: string; mode?: 'merge' | 'replace' | undefined },
  targets: readonly string[],
): Promise<Pick<TouchedKeys, 'copiedTaints' | 'taints'>> {
  const replace = params.mode === 'replace';
  const taints = await inventory.nodeTaints(replace ? [params.copyFrom, ...targets] : [params.copyFrom]);
  const source = taints.get(params.copyFrom);
  if (source === undefined) {
    throw new InvalidRequestError(
      'body.params.copyFrom',
      `the source node ${JSON.stringify(params.copyFrom)} to copy taints from is not in cluster ${JSON.stringify(inventory.cluster)}; check the name`,
    );
  }
  const dropped = replace
    ? targets.flatMap((node) =>
        (taints.get(node) ?? []).filter((taint) => !isClusterManagedTaint(taint.key)).map((t) => t.key),
      )
    : [];
  return {
    copiedTaints: { from: params.copyFrom, keys: copyableTaints(source).map((taint) => taint.key) },
    taints: [...new Set(dropped)],
  };
}

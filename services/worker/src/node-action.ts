import type { BatchParams, DrainProgress, NodeOperator } from '@nodebatch/kube';
import type { BatchAction } from '@nodebatch/progress';

/** A batch's action with its validated params, ready to run on each node. */
export type PreparedAction = { [A in BatchAction]: { action: A; params: BatchParams<A> } }[BatchAction];

export interface NodeActionOptions {
  signal: AbortSignal;
  /** Drain only: called per evicted pod. */
  onProgress: (progress: DrainProgress) => void;
}

/**
 * Runs one batch action on one node. Every NodeOperator method is idempotent,
 * so a node redone after a worker died mid-operation ends in the same state.
 * Resolves with a short message for NodeSucceeded.
 */
export async function runNodeAction(
  operator: NodeOperator,
  prepared: PreparedAction,
  node: string,
  options: NodeActionOptions,
): Promise<string | undefined> {
  const { signal } = options;
  switch (prepared.action) {
    case 'cordon':
      await operator.cordon(node, { signal });
      return undefined;
    case 'uncordon':
      await operator.uncordon(node, { signal });
      return undefined;
    case 'drain': {
      const { timeoutSeconds, gracePeriodSeconds, waitForDeletion } = prepared.params;
      const result = await operator.drain(node, {
        signal,
        onProgress: options.onProgress,
        ...(timeoutSeconds !== undefined && { timeoutMs: timeoutSeconds * 1000 }),
        ...(gracePeriodSeconds !== undefined && { gracePeriodSeconds }),
        ...(waitForDeletion !== undefined && { waitForDeletion }),
      });
      return `${result.evicted.length} pod(s) evicted, ${result.skipped.length} left (DaemonSet or mirror)`;
    }
    case 'label': {
      const { set, remove } = prepared.params;
      if (set && Object.keys(set).length > 0) await operator.addLabels(node, set, { signal });
      if (remove && remove.length > 0) await operator.removeLabels(node, remove, { signal });
      return undefined;
    }
    case 'taint': {
      const { add, remove, copyFrom } = prepared.params;
      if (copyFrom !== undefined) await operator.copyTaints(copyFrom, node, { signal });
      if (add && add.length > 0) await operator.addTaints(node, add, { signal });
      if (remove && remove.length > 0) await operator.removeTaints(node, remove, { signal });
      return undefined;
    }
  }
}

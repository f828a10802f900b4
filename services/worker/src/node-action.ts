import type { BatchParams, CordonReason, DrainProgress, NodeOperator, Taint } from '@nodebatch/kube';
import { OperationAbortedError } from '@nodebatch/kube';
import type { BatchAction, DrainPlan } from '@nodebatch/progress';
import type { Logger } from 'pino';

/** A batch's action with its validated params, ready to run on each node. */
export type PreparedAction = { [A in BatchAction]: { action: A; params: BatchParams<A> } }[BatchAction];

/** What a batch learned once, before its nodes run: the copy source's taints. */
export interface BatchPreparation {
  /** Taint batches with copyFrom: the source's taints, read once so every target gets the same set. */
  sourceTaints?: readonly Taint[];
}

export interface NodeActionOptions {
  signal: AbortSignal;
  /** Drain only: called per evicted pod and per wait. */
  onProgress: (progress: DrainProgress) => void;
  /** Who cordons and why (cordon and drain): written as node annotations with the cordon. */
  reason?: CordonReason | undefined;
  preparation?: BatchPreparation;
}

export interface PrepareBatchOptions {
  signal: AbortSignal;
  reason?: CordonReason | undefined;
  logger: Logger;
  /** Cordons at once while preparing a drain. Default 10. */
  cordonConcurrency?: number;
}

/**
 * Work done once per batch before any node runs. A drain cordons every node of the batch first,
 * as `kubectl drain` does with several nodes, so pods evicted from the first node cannot land on
 * one that is about to be drained. A cordon that fails here is left to the node's own drain (it
 * cordons again and reports the failure on that node). A taint copy reads its source once; a
 * missing source throws (SourceNodeNotFoundError) and the task fails once.
 */
export async function prepareBatch(
  operator: NodeOperator,
  prepared: PreparedAction,
  nodes: readonly string[],
  options: PrepareBatchOptions,
): Promise<BatchPreparation> {
  const { signal } = options;
  if (prepared.action === 'drain') {
    const dryRun = prepared.params.dryRun ?? false;
    const queue = [...nodes];
    const lane = async () => {
      for (let node = queue.shift(); node !== undefined && !signal.aborted; node = queue.shift()) {
        try {
          await operator.cordon(node, { signal, dryRun, ...(options.reason && { reason: options.reason }) });
        } catch (err) {
          if (err instanceof OperationAbortedError) return;
          options.logger.info({ node, err }, 'cordon before drain failed; the node reports it when it runs');
        }
      }
    };
    const lanes = Math.min(options.cordonConcurrency ?? 10, queue.length);
    await Promise.all(Array.from({ length: lanes }, lane));
    return {};
  }
  if (prepared.action === 'taint' && prepared.params.copyFrom !== undefined) {
    return { sourceTaints: await operator.readTaints(prepared.params.copyFrom, { signal }) };
  }
  return {};
}

/** What NodeSucceeded says of a node: a short message and, for a drain dry run, its plan. */
export interface NodeActionResult {
  message?: string;
  drainPlan?: DrainPlan;
}

/**
 * Runs one batch action on one node. Every NodeOperator method is idempotent,
 * so a node redone after a worker died mid-operation ends in the same state.
 * Resolves with what NodeSucceeded says.
 */
export async function runNodeAction(
  operator: NodeOperator,
  prepared: PreparedAction,
  node: string,
  options: NodeActionOptions,
): Promise<NodeActionResult> {
  const { signal, reason } = options;
  switch (prepared.action) {
    case 'cordon': {
      const result = await operator.cordon(node, { signal, ...(reason && { reason }) });
      return { message: result.alreadyCordoned ? 'already cordoned' : 'cordoned' };
    }
    case 'uncordon':
      await operator.uncordon(node, { signal });
      return {};
    case 'drain': {
      const { timeoutSeconds, ...params } = prepared.params;
      const result = await operator.drain(node, {
        signal,
        onProgress: options.onProgress,
        ...params,
        ...(timeoutSeconds !== undefined && { timeoutMs: timeoutSeconds * 1000 }),
      });
      const verb = result.deleted ? 'deleted' : 'evicted';
      if (result.dryRun) {
        return {
          message:
            `dry run: ${result.evicted.length} pod(s) would be ${verb}` +
            (result.blocked.length > 0
              ? `; blocked: ${result.blocked.map((pod) => `${pod.pod} (${pod.reason})`).join(', ')}`
              : '; nothing blocks the drain'),
          drainPlan: {
            evict: result.evicted,
            left: result.skipped.map(({ pod, reason }) => ({ pod, reason })),
            blocked: result.blocked.map(({ pod, reason }) => ({ pod, reason })),
          },
        };
      }
      return {
        message: `${result.evicted.length} pod(s) ${verb} and gone, ${result.skipped.length} left (DaemonSet, mirror or long-terminating)`,
      };
    }
    case 'label': {
      const { set, remove } = prepared.params;
      if (set && Object.keys(set).length > 0) await operator.addLabels(node, set, { signal });
      if (remove && remove.length > 0) await operator.removeLabels(node, remove, { signal });
      return {};
    }
    case 'taint': {
      const { add, remove, copyFrom, mode } = prepared.params;
      if (copyFrom !== undefined) {
        await operator.copyTaints(copyFrom, node, {
          signal,
          ...(mode && { mode }),
          ...(options.preparation?.sourceTaints && { taints: options.preparation.sourceTaints }),
        });
      }
      if (add && add.length > 0) await operator.addTaints(node, add, { signal });
      if (remove && remove.length > 0) await operator.removeTaints(node, remove, { signal });
      return {};
    }
  }
}

import { clusterTargets, type NodebatchConfig } from '@nodebatch/config';
import { ClusterNotConfiguredError, createNodeOperator, type NodeOperator } from '@nodebatch/kube';
import type { Logger } from 'pino';

/** A cluster this worker runs batches on: its configured name and the operator that reaches it. */
interface ClusterOperator {
  name: string;
  operator: NodeOperator;
  /** The logger of its consumer and tasks (with `cluster: name` when clusters are listed). */
  logger: Logger;
}

/**
 * The clusters this worker serves. Without a cluster list, the one cluster,
 * or ClusterNotConfiguredError saying how to give credentials. With a list,
 * every cluster whose credentials this worker has (each worker of a fleet may
 * hold a different kubeconfig); one it lacks is skipped with a warning, its
 * batches wait for a worker that has them. None at all: the error names each
 * cluster and why. `given`: the operator of the default (or only) cluster, alone.
 */
export function clusterOperators(
  config: NodebatchConfig,
  logger: Logger,
  given?: NodeOperator,
): ClusterOperator[] {
  const targets = clusterTargets(config.cluster);
  if (given) {
    const target = targets.find((candidate) => candidate.isDefault) ?? targets[0]!;
    return [{ name: target.name, operator: given, logger }];
  }
  if (!config.cluster.clusters) {
    const [only] = targets;
    return [{ name: only!.name, operator: createNodeOperator({ cluster: only!, logger }), logger }];
  }
  const served: ClusterOperator[] = [];
  const missing: string[] = [];
  for (const target of targets) {
    const clusterLogger = logger.child({ cluster: target.name });
    try {
      served.push({
        name: target.name,
        operator: createNodeOperator({ cluster: target, logger: clusterLogger }),
        logger: clusterLogger,
      });
    } catch (err) {
      if (!(err instanceof ClusterNotConfiguredError)) throw err;
      missing.push(`${target.name}: ${err.detail}`);
      logger.warn(
        { err, cluster: target.name },
        'no credentials for this cluster: this worker does not take its batches',
      );
    }
  }
  if (served.length === 0) {
    throw new ClusterNotConfiguredError(
      `this worker has credentials for none of the configured clusters (${missing.join('; ')})`,
    );
  }
  return served;
}

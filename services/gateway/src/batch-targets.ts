import type { ClusterMode } from '@nodebatch/config';
import type { BatchAction } from '@nodebatch/progress';
import type { NodeInventory } from '@nodebatch/kube';
import { GatewayError, InvalidRequestError } from './errors.js';

/** Limits the operator of the service sets on batches (config `limits`). */
export interface BatchLimits {
  /** Most nodes in one batch (LIMIT_BATCH_NODES). */
  maxBatchNodes: number;
  /** Largest concurrency of a drain (LIMIT_DRAIN_CONCURRENCY). */
  maxDrainConcurrency: number;
  /** Largest concurrency of the other actions (LIMIT_CONCURRENCY). */
  maxConcurrency: number;
}

/** The clusters the gateway knows, by name, with the inventory of each (when it can read it). */
export interface ClusterDirectory {
  /** Known names, in configuration order. */
  readonly names: readonly string[];
  /** Where a batch that names no cluster runs: the only one or the one marked default; else none. */
  readonly defaultName: string | undefined;
  /** How a known cluster runs: against a Kubernetes API server or simulated. */
  modeOf(name: string): ClusterMode;
  inventory(name: string): NodeInventory | undefined;
}

/** One entry of GET /api/v1/clusters. */
interface ClusterSummary {
  name: string;
  mode: ClusterMode;
  /** Whether a batch or node listing that names no cluster uses this one. */
  default: boolean;
}

/** The known clusters in configuration order, as GET /api/v1/clusters lists them. */
export function summarizeClusters(directory: ClusterDirectory): ClusterSummary[] {
  return directory.names.map((name) => ({
    name,
    mode: directory.modeOf(name),
    default: name === directory.defaultName,
  }));
}

/** The cluster a batch names, or the default; a 400 naming the known ones when unknown or when there is no default. */
export function resolveCluster(directory: ClusterDirectory, requested: string | undefined): string {
  const known = directory.names.join(', ') || '(none)';
  if (requested === undefined) {
    if (directory.defaultName !== undefined) return directory.defaultName;
    throw new InvalidRequestError(
      'body.cluster',
      `name the cluster: none of the configured clusters is the default; known clusters: ${known}`,
    );
  }
  if (!directory.names.includes(requested)) {
    throw new InvalidRequestError(
      'body.cluster',
      `unknown cluster ${JSON.stringify(requested)}; known clusters: ${known}`,
    );
  }
  return requested;
}

/** The inventory of a cluster, or a 503 saying how to configure access to it. */
export function requireInventory(directory: ClusterDirectory, cluster: string): NodeInventory {
  const inventory = directory.inventory(cluster);
  if (!inventory) {
    throw new GatewayError(
      'CLUSTER_NOT_CONFIGURED',
      503,
      `the gateway cannot read cluster ${JSON.stringify(cluster)}: give it a kubeconfig (KUBECONFIG, ~/.kube/config, or the cluster's kubeconfig in NODEBATCH_CLUSTERS) or a service account with the read-only nodebatch-gateway role, or set NODEBATCH_CLUSTER=simulated`,
    );
  }
  return inventory;
}

/** Checks a batch against the limits; a 400 naming the limit, never a silent clamp. */
export function checkBatchLimits(
  limits: BatchLimits,
  action: BatchAction,
  nodeCount: number,
  concurrency: number | undefined,
): void {
  if (nodeCount > limits.maxBatchNodes) {
    throw new InvalidRequestError(
      'body.nodes',
      `${nodeCount} nodes is over the limit of ${limits.maxBatchNodes} per batch (LIMIT_BATCH_NODES); split the batch`,
    );
  }
  const max = action === 'drain' ? limits.maxDrainConcurrency : limits.maxConcurrency;
  const setting = action === 'drain' ? 'LIMIT_DRAIN_CONCURRENCY' : 'LIMIT_CONCURRENCY';
  if (concurrency !== undefined && concurrency > max) {
    throw new InvalidRequestError(
      'body.concurrency',
      `${concurrency} is over the limit of ${max} for ${action} (${setting})`,
    );
  }
}

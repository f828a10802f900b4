import type { Logger } from 'pino';
import { KubernetesNodeOperator, type KubernetesNodeOperatorOptions } from './kubernetes-node-operator.js';
import { loadKubeConfig, type LoadKubeConfigOptions } from './load-kube-config.js';
import type { NodeOperator } from './node-operator.js';
import { KubernetesNodeInventory, SimulatedNodeInventory, type NodeInventory } from './node-inventory.js';
import { SimulatedCluster, type SimulatedClusterOptions } from './simulated-cluster.js';

/** What the factory reads of NodebatchConfig['cluster'] (declared here so kube does not depend on config). */
export interface ClusterSettings {
  mode: 'kubernetes' | 'simulated';
  simNodes: number;
  simLatencyMs: number;
  simFailureRate: number;
  kubeconfig?: string;
  /** The kubeconfig context; default: the file's current one. */
  context?: string;
}

export interface CreateNodeOperatorOptions {
  cluster: ClusterSettings;
  logger: Logger;
  /** Where to look for a kubeconfig or service account besides `cluster.kubeconfig` (tests). */
  locate?: Omit<LoadKubeConfigOptions, 'kubeconfig'>;
  /** Tuning of the Kubernetes operator (retries, backoff, timeouts). */
  kubernetes?: Omit<KubernetesNodeOperatorOptions, 'kubeConfig' | 'logger'>;
  /** Tuning of the simulated cluster beyond nodes, latency and failure rate. */
  simulated?: Omit<SimulatedClusterOptions, 'nodes' | 'latencyMs' | 'failureRate' | 'logger'>;
}

/**
 * The simulated cluster when `cluster.mode` is 'simulated', otherwise the Kubernetes operator for
 * the kubeconfig (KUBECONFIG, ~/.kube/config) or in-cluster service account; throws
 * ClusterNotConfiguredError, saying how to configure one, when there is none.
 */
export function createNodeOperator(options: CreateNodeOperatorOptions): NodeOperator {
  const { cluster, logger } = options;
  if (cluster.mode === 'simulated') {
    logger.info(
      {
        clusterMode: 'simulated',
        nodes: cluster.simNodes,
        latencyMs: cluster.simLatencyMs,
        failureRate: cluster.simFailureRate,
      },
      'using the simulated cluster',
    );
    return new SimulatedCluster({
      ...options.simulated,
      nodes: cluster.simNodes,
      latencyMs: cluster.simLatencyMs,
      failureRate: cluster.simFailureRate,
      logger,
    });
  }
  const loaded = loadKubeConfig({ ...options.locate, ...kubeconfigOf(cluster) });
  logger.info(
    { clusterMode: 'kubernetes', source: loaded.source, server: loaded.server },
    'using a Kubernetes cluster',
  );
  return new KubernetesNodeOperator({ ...options.kubernetes, kubeConfig: loaded.kubeConfig, logger });
}

/**
 * The read-only node inventory the gateway serves, for the same cluster settings as
 * createNodeOperator: the simulated cluster's nodes when the mode is 'simulated', otherwise the
 * Kubernetes cluster of the kubeconfig or service account (ClusterNotConfiguredError when none).
 */
export function createNodeInventory(options: {
  cluster: ClusterSettings;
  locate?: Omit<LoadKubeConfigOptions, 'kubeconfig'>;
  /** The name the inventory reports for the cluster. Default 'default' ('simulated' for the simulated one). */
  name?: string;
}): NodeInventory {
  const { cluster } = options;
  if (cluster.mode === 'simulated') {
    return new SimulatedNodeInventory(new SimulatedCluster({ nodes: cluster.simNodes }), options.name);
  }
  const loaded = loadKubeConfig({ ...options.locate, ...kubeconfigOf(cluster) });
  return new KubernetesNodeInventory(loaded.kubeConfig, options.name);
}

/** Where loadKubeConfig looks for a cluster's credentials. */
function kubeconfigOf(cluster: ClusterSettings): Pick<LoadKubeConfigOptions, 'kubeconfig' | 'context'> {
  return {
    kubeconfig: cluster.kubeconfig,
    ...(cluster.context === undefined ? {} : { context: cluster.context }),
  };
}

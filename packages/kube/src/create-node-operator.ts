import type { Logger } from 'pino';
import { KubernetesNodeOperator, type KubernetesNodeOperatorOptions } from './kubernetes-node-operator.js';
import { loadKubeConfig, type LoadKubeConfigOptions } from './load-kube-config.js';
import type { NodeOperator } from './node-operator.js';
import { SimulatedCluster, type SimulatedClusterOptions } from './simulated-cluster.js';

/** What the factory reads of NodebatchConfig['cluster'] (declared here so kube does not depend on config). */
export interface ClusterSettings {
  mode: 'kubernetes' | 'simulated';
  simNodes: number;
  simLatencyMs: number;
  simFailureRate: number;
  kubeconfig?: string;
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
        cluster: 'simulated',
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
  const loaded = loadKubeConfig({ ...options.locate, kubeconfig: cluster.kubeconfig });
  logger.info(
    { cluster: 'kubernetes', source: loaded.source, server: loaded.server },
    'using a Kubernetes cluster',
  );
  return new KubernetesNodeOperator({ ...options.kubernetes, kubeConfig: loaded.kubeConfig, logger });
}

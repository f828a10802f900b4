import { clusterTargets, type NodebatchConfig } from '@nodebatch/config';
import { ClusterNotConfiguredError, createNodeInventory, type NodeInventory } from '@nodebatch/kube';
import type { Logger } from 'pino';
import type { ClusterDirectory } from './batch-targets.js';

/**
 * The configured clusters (cluster.clusters, else the one `default`), each
 * with a read-only inventory when the gateway has credentials for it. A
 * cluster without credentials stays known, so batches may still name it (a
 * worker holding its credentials runs them); its inventory answers 503,
 * logged once here.
 */
export function configuredClusterDirectory(config: NodebatchConfig, logger: Logger): ClusterDirectory {
  const targets = clusterTargets(config.cluster);
  const inventories = new Map<string, NodeInventory | undefined>();
  const modes = new Map(targets.map((target) => [target.name, target.mode]));
  for (const target of targets) {
    try {
      inventories.set(target.name, createNodeInventory({ cluster: target, name: target.name }));
    } catch (err) {
      if (!(err instanceof ClusterNotConfiguredError)) throw err;
      logger.warn(
        { err, cluster: target.name },
        'no credentials for this cluster: GET /api/v1/nodes and selector batches for it answer 503',
      );
      inventories.set(target.name, undefined);
    }
  }
  return {
    names: targets.map((target) => target.name),
    defaultName: targets.find((target) => target.isDefault)?.name,
    modeOf: (name) => modes.get(name) ?? 'kubernetes',
    inventory: (name) => inventories.get(name),
  };
}

/** One cluster, named as its inventory names it (tests give the gateway an inventory of their own). */
export function singleClusterDirectory(inventory: NodeInventory): ClusterDirectory {
  const name = inventory.cluster;
  return {
    names: [name],
    defaultName: name,
    modeOf: () => (inventory.simulated ? 'simulated' : 'kubernetes'),
    inventory: (wanted) => (wanted === name ? inventory : undefined),
  };
}

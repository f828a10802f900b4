import { InvalidNodeInputError, NODE_STATUS_FILTERS } from '@nodebatch/kube';
import { z } from 'zod';
import {
  requireInventory,
  resolveCluster,
  summarizeClusters,
  type ClusterDirectory,
} from '../batch-targets.js';
import { InvalidRequestError } from '../errors.js';
import type { GatewayPlugin } from '../gateway-context.js';

interface NodesPluginOptions {
  clusters: ClusterDirectory;
}

const NodesQuerySchema = z.object({
  /** Label selector. */
  selector: z.string().max(1024).optional(),
  status: z.enum(NODE_STATUS_FILTERS).optional(),
  /** Nodes whose name contains this. */
  name: z.string().max(253).optional(),
  cluster: z.string().max(253).optional(),
  limit: z.coerce.number().int().positive().max(500).optional(),
  continue: z.string().max(100).optional(),
});

/**
 * GET /api/v1/clusters: the clusters batches may name, and GET /api/v1/nodes: a cluster's nodes;
 * both for everyone who may sign in (read-only).
 */
export const nodesPlugin: GatewayPlugin<NodesPluginOptions> = async (app, options) => {
  app.get('/api/v1/clusters', async () => ({ clusters: summarizeClusters(options.clusters) }));
  app.get('/api/v1/nodes', { schema: { querystring: NodesQuerySchema } }, async (request) => {
    const { query } = request;
    let cluster: string;
    try {
      cluster = resolveCluster(options.clusters, query.cluster);
    } catch (err) {
      if (err instanceof InvalidRequestError)
        throw new InvalidRequestError('cluster', err.message.replace(/^body\.cluster: /, ''));
      throw err;
    }
    const inventory = requireInventory(options.clusters, cluster);
    try {
      return await inventory.listNodes({
        ...(query.selector ? { labelSelector: query.selector } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.name ? { name: query.name } : {}),
        ...(query.limit ? { limit: query.limit } : {}),
        ...(query.continue ? { continue: query.continue } : {}),
      });
    } catch (err) {
      if (err instanceof InvalidNodeInputError) {
        const first = err.issues[0];
        throw new InvalidRequestError(
          first?.path === 'labelSelector' ? 'selector' : (first?.path ?? 'query'),
          first?.message ?? err.message,
          { cause: err },
        );
      }
      throw err;
    }
  });
};

import type { StoredEventOf } from '@nodebatch/progress';
import type { FastifyPluginAsync, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Principal } from './auth.js';
import { canAccess } from './auth.js';
import { TaskNotFoundError } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayServices } from './services.js';
import type { OpenStream } from './sse-stream.js';
import type { TaskOwnerCache } from './task-owner-cache.js';

/**
 * What the gateway's plugins share: the services, the metrics, the owner
 * cache and the open streams (ended on shutdown). Built once by
 * buildGatewayApp and passed to each plugin as its options.
 */
export interface GatewayContext {
  services: GatewayServices;
  metrics: GatewayMetrics;
  owners: TaskOwnerCache;
  /** Streams still open; `preClose` ends them so clients resume on another replica. */
  openStreams: Set<OpenStream>;
}

/** The task's TaskCreated event, if the principal may see the task; otherwise a 404 for both cases. */
export async function authorizeTask(
  context: GatewayContext,
  taskId: string,
  principal: Principal,
): Promise<StoredEventOf<'TaskCreated'>> {
  const created = await context.owners.created(taskId);
  if (!created || !canAccess(principal, created.data.userId)) throw new TaskNotFoundError(taskId);
  return created;
}

/** A plugin of the gateway: zod schemas as the type provider, pino as the logger. */
export type GatewayPlugin<Options extends object = Record<never, never>> = FastifyPluginAsync<
  Options,
  RawServerDefault,
  ZodTypeProvider,
  Logger
>;

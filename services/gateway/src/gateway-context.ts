import type { AuditEntry } from '@nodebatch/event-store';
import type { FastifyPluginAsync, FastifyRequest, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Principal } from './auth.js';
import { PolicyDeniedError, TaskGoneError, TaskNotFoundError } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import type { Policy } from './policy.js';
import type { GatewayServices } from './services.js';
import type { OpenStream } from './sse-stream.js';
import type { RateWindow } from './rate-window.js';
import type { StreamLimiter } from './stream-limiter.js';
import type { TaskOwnerCache } from './task-owner-cache.js';

/**
 * What the gateway's plugins share: the services, the metrics, the policy,
 * the owner cache, the stream limiter and the open streams (ended on
 * shutdown). Built once by buildGatewayApp and passed to each plugin.
 */
export interface GatewayContext {
  services: GatewayServices;
  metrics: GatewayMetrics;
  policy: Policy;
  owners: TaskOwnerCache;
  streamLimiter: StreamLimiter;
  /** WebSocket subscribe messages per user. */
  subscribes: RateWindow;
  /** Streams still open; `preClose` ends them so clients resume on another replica. */
  openStreams: Set<OpenStream>;
}

/** A plugin of the gateway: zod schemas as the type provider, pino as the logger. */
export type GatewayPlugin<Options extends object = Record<never, never>> = FastifyPluginAsync<
  Options,
  RawServerDefault,
  ZodTypeProvider,
  Logger
>;

/**
 * The owner of a task the principal may see. An unknown task and another
 * user's task are the same 404; a task whose events retention deleted is 410.
 */
export async function authorizeTask(
  context: GatewayContext,
  taskId: string,
  principal: Principal,
): Promise<{ ownerId: string }> {
  const ownership = await context.owners.lookup(taskId);
  if (ownership.state === 'unknown' || !context.policy.maySeeTask(principal, ownership.ownerId)) {
    throw new TaskNotFoundError(taskId);
  }
  if (ownership.state === 'gone') throw new TaskGoneError(taskId);
  return { ownerId: ownership.ownerId };
}

/** An audit row of `request`'s caller: who and from where are filled in. */
export async function recordAudit(
  context: GatewayContext,
  request: FastifyRequest,
  entry: Omit<AuditEntry, 'kind' | 'userId' | 'role' | 'clientAddress'>,
): Promise<void> {
  const principal = request.principal!;
  await context.services.audit.record({
    kind: 'request',
    userId: principal.userId,
    role: principal.role,
    clientAddress: request.ip,
    ...entry,
  });
}

/** Records a refusal, then throws it as a 403. A failed write is logged: the refusal stands. */
export async function refuse(
  context: GatewayContext,
  request: FastifyRequest,
  entry: Omit<AuditEntry, 'kind' | 'userId' | 'role' | 'clientAddress' | 'decision'> & {
    rule: string;
    message: string;
  },
): Promise<never> {
  await recordAudit(context, request, { ...entry, decision: 'denied' }).catch((err: unknown) =>
    request.log.error({ err, rule: entry.rule }, 'could not record a refusal in the audit trail'),
  );
  throw new PolicyDeniedError(entry.rule, entry.message);
}

import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyWebsocket from '@fastify/websocket';
import type { LimitsConfig } from '@nodebatch/config';
import Fastify, { LogController } from 'fastify';
import type {
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Authenticator } from './auth.js';
import type { GatewayContext } from './gateway-context.js';
import type { GatewayMetrics } from './metrics.js';
import type { Policy } from './policy.js';
import { auditPlugin } from './plugins/audit.js';
import { authenticationPlugin } from './plugins/authentication.js';
import { errorsPlugin } from './plugins/errors.js';
import { healthPlugin } from './plugins/health.js';
import { pagePlugin } from './plugins/page.js';
import { streamsPlugin } from './plugins/streams.js';
import { tasksPlugin } from './plugins/tasks.js';
import { nodesPlugin } from './plugins/nodes.js';
import { whoamiPlugin } from './plugins/whoami.js';
import type { ClusterDirectory } from './batch-targets.js';
import type { GatewayServices } from './services.js';
import { SSE_DEFAULTS } from './sse-stream.js';
import type { SseStreamOptions } from './sse-stream.js';
import { RateWindow } from './rate-window.js';
import { StreamLimiter } from './stream-limiter.js';
import { TaskOwnerCache } from './task-owner-cache.js';
import { WS_DEFAULTS } from './ws-session.js';
import type { WebSocketSessionOptions } from './ws-session.js';

export { TOKEN_COOKIE } from './plugins/authentication.js';

export interface GatewayAppOptions {
  services: GatewayServices;
  authenticator: Authenticator;
  metrics: GatewayMetrics;
  policy: Policy;
  /** Stream caps and per-user rates (config `limits`). */
  limits: LimitsConfig;
  logger: Logger;
  /**
   * True when /metrics and the detailed /readyz are served on an internal
   * port (METRICS_PORT, see buildInternalApp): this app then has no /metrics
   * and its /readyz says only ready or not. Default false.
   */
  internalMetrics?: boolean;
  /** Origins allowed to open the WebSocket besides the gateway's own (ALLOWED_ORIGINS). */
  allowedOrigins: readonly string[];
  sse?: SseStreamOptions;
  ws?: WebSocketSessionOptions;
  /** Milliseconds /readyz waits for the database. Default 2000. */
  readinessTimeoutMs?: number;
  /** The clusters batches may name and their node inventories. */
  clusters: ClusterDirectory;
}

/** The gateway's Fastify instance, with zod schemas as its type provider. */
export type GatewayApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  Logger,
  ZodTypeProvider
>;

/**
 * The gateway's HTTP application: one plugin per concern (errors,
 * authentication, health and metrics, the page, tasks, streams), sharing a
 * GatewayContext. It owns no connection; `startGateway` builds the services
 * and listens.
 */
export async function buildGatewayApp(options: GatewayAppOptions): Promise<GatewayApp> {
  const { services } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    // One line per request would drown the log with 2,000 stream clients, and
    // request URLs may carry ?token=.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(fastifyCookie);
  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });

  const { limits } = options;
  const context: GatewayContext = {
    services,
    metrics: options.metrics,
    policy: options.policy,
    owners: new TaskOwnerCache({
      readOwner: async (taskId) => (await services.tasks.getTask(taskId))?.userId ?? null,
      readFormerOwner: (taskId) => services.audit.acceptedTaskOwner(taskId),
    }),
    streamLimiter: new StreamLimiter({ perUser: limits.streamsPerUser, total: limits.streamsTotal }),
    subscribes: new RateWindow({ max: limits.subscribesPerMinute }),
    openStreams: new Set(),
  };
  app.addHook('preClose', async () => {
    for (const stream of [...context.openStreams]) stream.end();
  });

  await app.register(errorsPlugin);
  await app.register(authenticationPlugin, { authenticator: options.authenticator });
  // Per route (config.rateLimit), after authentication: the key is the user.
  await app.register(fastifyRateLimit, { global: false });
  await app.register(healthPlugin, {
    services,
    metrics: options.metrics,
    readinessTimeoutMs: options.readinessTimeoutMs ?? 2000,
    detail: options.internalMetrics ? 'public' : 'detailed',
  });
  await app.register(pagePlugin);
  await app.register(nodesPlugin, { clusters: options.clusters });
  await app.register(whoamiPlugin, { context, authenticator: options.authenticator });
  await app.register(tasksPlugin, {
    context,
    clusters: options.clusters,
    batchLimits: limits,
    batchesPerMinute: limits.batchesPerMinute,
    cancelsPerMinute: limits.cancelsPerMinute,
  });
  await app.register(auditPlugin, { context });
  await app.register(streamsPlugin, {
    context,
    sse: { ...SSE_DEFAULTS, ...options.sse },
    ws: { ...WS_DEFAULTS, ...options.ws },
    allowedOrigins: options.allowedOrigins,
  });
  return app;
}

/** The internal listener's Fastify instance. */
export type InternalApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  Logger
>;

export interface InternalAppOptions {
  services: Pick<GatewayServices, 'database' | 'notifier'>;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Milliseconds /readyz waits for the database. Default 2000. */
  readinessTimeoutMs?: number;
}

/**
 * The internal listener (METRICS_PORT): /metrics and the detailed /readyz,
 * for Prometheus and the kubelet, never exposed through the public ingress.
 */
export async function buildInternalApp(options: InternalAppOptions): Promise<InternalApp> {
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(errorsPlugin);
  await app.register(healthPlugin, {
    services: options.services,
    metrics: options.metrics,
    readinessTimeoutMs: options.readinessTimeoutMs ?? 2000,
    detail: 'detailed',
  });
  return app;
}

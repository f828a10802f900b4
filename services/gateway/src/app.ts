import fastifyCookie from '@fastify/cookie';
import fastifyWebsocket from '@fastify/websocket';
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
import { authenticationPlugin } from './plugins/authentication.js';
import { errorsPlugin } from './plugins/errors.js';
import { healthPlugin } from './plugins/health.js';
import { pagePlugin } from './plugins/page.js';
import { streamsPlugin } from './plugins/streams.js';
import { tasksPlugin } from './plugins/tasks.js';
import type { GatewayServices } from './services.js';
import { SSE_DEFAULTS } from './sse-stream.js';
import type { SseStreamOptions } from './sse-stream.js';
import { TaskOwnerCache } from './task-owner-cache.js';
import { WS_DEFAULTS } from './ws-session.js';
import type { WebSocketSessionOptions } from './ws-session.js';

export { TOKEN_COOKIE } from './plugins/authentication.js';

export interface GatewayAppOptions {
  services: GatewayServices;
  authenticator: Authenticator;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Origins allowed to open the WebSocket besides the gateway's own (ALLOWED_ORIGINS). */
  allowedOrigins: readonly string[];
  sse?: SseStreamOptions;
  ws?: WebSocketSessionOptions;
  /** Milliseconds /readyz waits for the database. Default 2000. */
  readinessTimeoutMs?: number;
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

  const context: GatewayContext = {
    services,
    metrics: options.metrics,
    owners: new TaskOwnerCache({ readTask: (taskId, opts) => services.tasks.readTask(taskId, opts) }),
    openStreams: new Set(),
  };
  app.addHook('preClose', async () => {
    for (const stream of [...context.openStreams]) stream.end();
  });

  await app.register(errorsPlugin);
  await app.register(authenticationPlugin, { authenticator: options.authenticator });
  await app.register(healthPlugin, { context, readinessTimeoutMs: options.readinessTimeoutMs ?? 2000 });
  await app.register(pagePlugin);
  await app.register(tasksPlugin, { context });
  await app.register(streamsPlugin, {
    context,
    sse: { ...SSE_DEFAULTS, ...options.sse },
    ws: { ...WS_DEFAULTS, ...options.ws },
    allowedOrigins: options.allowedOrigins,
  });
  return app;
}

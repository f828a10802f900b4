import type { NodebatchConfig } from '@nodebatch/config';
import { createRuntime } from '@nodebatch/runtime';
import type { RuntimeOptions } from '@nodebatch/runtime';
import type { Logger } from 'pino';
import { createAuditLog } from '@nodebatch/event-store';
import type { AuditRetentionJob } from '@nodebatch/event-store';
import type { FastifyInstance } from 'fastify';
import { buildGatewayApp, buildInternalApp } from './app.js';
import type { GatewayApp, InternalApp } from './app.js';
import { createAuthenticator } from './auth.js';
import type { AuthenticatorOptions } from './auth.js';
import { GatewayMetrics } from './metrics.js';
import { Policy } from './policy.js';
import type { NodeInventory } from '@nodebatch/kube';
import { configuredClusterDirectory, singleClusterDirectory } from './cluster-directory.js';
import { createClusterQueues } from './cluster-queues.js';
import type { SseStreamOptions } from './sse-stream.js';
import type { WebSocketSessionOptions } from './ws-session.js';

export interface StartGatewayOptions {
  config: NodebatchConfig;
  logger: Logger;
  /** Interface to listen on. Default '0.0.0.0' (every interface, as in a container). */
  host?: string;
  /** SSE heartbeat and slow-client limits; defaults in SSE_DEFAULTS. */
  sse?: SseStreamOptions;
  /** WebSocket slow-client and subscription limits; defaults in WS_DEFAULTS. */
  ws?: WebSocketSessionOptions;
  /** Milliseconds /readyz waits for the database before answering 503. Default 2000. */
  readinessTimeoutMs?: number;
  /** Notification channels (tests use their own); defaults in createRuntime. */
  channels?: Pick<RuntimeOptions, 'postgresChannel' | 'redisChannel'>;
  /** JWKS re-fetch cooldown after an unknown key id, ms (tests rotate keys). Default 30000. */
  jwksCooldownMs?: number;
  /**
   * One cluster with this inventory, named as it names itself. Default: the configured clusters
   * (cluster.clusters, else one named `default`), each with an inventory when the gateway has credentials.
   */
  nodes?: NodeInventory;
}

export interface GatewayHandle {
  /** Base URL of the listening gateway, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** The port it listens on (the one picked when config.gateway.port is 0). */
  readonly port: number;
  /** Base URL of the internal /metrics and /readyz listener; undefined without METRICS_PORT. */
  readonly internalUrl: string | undefined;
  /** Ends open streams (clients resume on another replica), then closes every connection. */
  close(): Promise<void>;
}

/**
 * Starts one gateway replica: the runtime (event store, notifier with its
 * single listener, progress streams), the job queue's producer side and the
 * HTTP server on config.gateway.port.
 */
export async function startGateway(options: StartGatewayOptions): Promise<GatewayHandle> {
  const { config } = options;
  const logger = options.logger.child({ component: 'gateway' });
  // Checked before any connection is opened: a gateway without auth must not come up by accident.
  const authenticator = createAuthenticator(authenticatorOptions(config, logger, options.jwksCooldownMs));
  const policy = new Policy(config.policy);
  const runtime = await createRuntime({ config, logger: options.logger, ...options.channels });
  const queue = createClusterQueues({ config, logger: options.logger });
  const metrics = new GatewayMetrics();
  const clusters = options.nodes
    ? singleClusterDirectory(options.nodes)
    : configuredClusterDirectory(config, logger);
  metrics.observeNotifier(runtime.notifier.info$);
  metrics.observeHintChecks(() => runtime.streams.hintCheckCounts());
  const audit = createAuditLog({ pool: runtime.pool, logger });
  let auditRetention: AuditRetentionJob | undefined;
  let app: GatewayApp | undefined;
  let internalApp: InternalApp | undefined;
  const release = async () => {
    metrics.stop();
    await auditRetention?.stop();
    await app?.close();
    await internalApp?.close();
    await Promise.allSettled([queue.close()]);
    await runtime.close();
  };
  try {
    app = await buildGatewayApp({
      services: {
        database: runtime.pool,
        tasks: runtime.store,
        notifier: runtime.notifier,
        streams: runtime.streams,
        queue,
        audit,
      },
      authenticator,
      metrics,
      policy,
      limits: config.limits,
      clusters,
      internalMetrics: config.gateway.metricsPort !== undefined,
      logger,
      allowedOrigins: config.gateway.allowedOrigins,
      ...(options.sse ? { sse: options.sse } : {}),
      ...(options.ws ? { ws: options.ws } : {}),
      ...(options.readinessTimeoutMs ? { readinessTimeoutMs: options.readinessTimeoutMs } : {}),
    });
    await app.listen({ port: config.gateway.port, host: options.host ?? '0.0.0.0' });
    if (config.gateway.metricsPort !== undefined) {
      internalApp = await buildInternalApp({
        services: { database: runtime.pool, notifier: runtime.notifier },
        metrics,
        logger,
        ...(options.readinessTimeoutMs ? { readinessTimeoutMs: options.readinessTimeoutMs } : {}),
      });
      await internalApp.listen({ port: config.gateway.metricsPort, host: options.host ?? '0.0.0.0' });
    }
    auditRetention = audit.startRetentionJob({ olderThanMs: config.audit.retentionDays * 86_400_000 });
  } catch (err) {
    await release().catch((closeErr: unknown) =>
      logger.error({ err: closeErr }, 'cleanup after a failed start failed'),
    );
    throw err;
  }
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  const urlOf = (server: FastifyInstance['server'], fallback: number): { url: string; port: number } => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : fallback;
    return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, port };
  };
  const { url, port } = urlOf(app.server, config.gateway.port);
  const internalUrl = internalApp
    ? urlOf(internalApp.server, config.gateway.metricsPort ?? 0).url
    : undefined;
  logger.info(
    { port, internalUrl, notifier: runtime.notifier.info, queue: queue.backend },
    'gateway listening',
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    internalUrl,
    close: () => (closing ??= release().then(() => logger.info('gateway closed'))),
  };
}

/** The authenticator's options from the configuration's `auth` section. */
export function authenticatorOptions(
  config: NodebatchConfig,
  logger: Logger,
  jwksCooldownMs?: number,
): AuthenticatorOptions {
  const { auth } = config;
  return {
    disabled: auth.disabled,
    jwtSecret: auth.jwtSecret,
    jwksUrl: auth.jwksUrl,
    issuer: auth.issuer,
    audience: auth.audience,
    maxTokenLifetimeSeconds: auth.maxTokenLifetimeSeconds,
    clockToleranceSeconds: auth.clockToleranceSeconds,
    userClaim: auth.userClaim,
    roleClaim: auth.roleClaim,
    groupsClaim: auth.groupsClaim,
    groupRoles: auth.groupRoles,
    defaultRole: auth.defaultRole,
    ...(jwksCooldownMs === undefined ? {} : { jwksCooldownMs }),
    logger,
  };
}

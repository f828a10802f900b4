import type { NodebatchConfig } from '@nodebatch/config';
import { createBatchQueue, createRuntime } from '@nodebatch/runtime';
import type { RuntimeOptions } from '@nodebatch/runtime';
import type { Logger } from 'pino';
import { buildGatewayApp } from './app.js';
import { createAuthenticator } from './auth.js';
import { GatewayMetrics } from './metrics.js';
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
}

export interface GatewayHandle {
  /** Base URL of the listening gateway, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** The port it listens on (the one picked when config.gateway.port is 0). */
  readonly port: number;
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
  const authenticator = createAuthenticator({
    jwtSecret: config.auth.jwtSecret,
    disabled: config.auth.disabled,
    logger,
  });
  const runtime = await createRuntime({ config, logger: options.logger, ...options.channels });
  const queue = createBatchQueue({ config, logger: options.logger });
  const metrics = new GatewayMetrics();
  metrics.observeNotifier(runtime.notifier.info$);
  metrics.observeHintChecks(() => runtime.streams.hintCheckCounts());
  let app: Awaited<ReturnType<typeof buildGatewayApp>> | undefined;
  const release = async () => {
    metrics.stop();
    await app?.close();
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
      },
      authenticator,
      metrics,
      logger,
      allowedOrigins: config.gateway.allowedOrigins,
      ...(options.sse ? { sse: options.sse } : {}),
      ...(options.ws ? { ws: options.ws } : {}),
      ...(options.readinessTimeoutMs ? { readinessTimeoutMs: options.readinessTimeoutMs } : {}),
    });
    await app.listen({ port: config.gateway.port, host: options.host ?? '0.0.0.0' });
  } catch (err) {
    await release().catch((closeErr: unknown) =>
      logger.error({ err: closeErr }, 'cleanup after a failed start failed'),
    );
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.gateway.port;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ port, notifier: runtime.notifier.info, queue: queue.backend }, 'gateway listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close: () => (closing ??= release().then(() => logger.info('gateway closed'))),
  };
}

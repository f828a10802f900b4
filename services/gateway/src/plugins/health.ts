import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../gateway-context.js';

export interface HealthPluginOptions {
  context: GatewayContext;
  /** Milliseconds /readyz waits for the database. */
  readinessTimeoutMs: number;
}

/** /healthz (the process runs), /readyz (the database answers; NotifierInfo) and /metrics. */
export async function healthPlugin(app: FastifyInstance, options: HealthPluginOptions): Promise<void> {
  const { services, metrics } = options.context;

  app.get('/healthz', { config: { public: true } }, () => ({ status: 'ok' }));

  app.get('/readyz', { config: { public: true } }, async (_request, reply) => {
    const notifier = services.notifier.info;
    try {
      await withTimeout(services.database.query('SELECT 1'), options.readinessTimeoutMs, 'database check');
    } catch (err) {
      const reason = `database unavailable: ${(err as Error).message}`;
      return reply
        .code(503)
        .send({ status: 'unavailable', reason, database: { ok: false, error: reason }, notifier });
    }
    return { status: 'ready', reason: null, database: { ok: true }, notifier };
  });

  app.get('/metrics', { config: { public: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

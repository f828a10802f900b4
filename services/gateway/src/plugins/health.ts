import { withTimeout } from '@nodebatch/progress';
import type { FastifyInstance } from 'fastify';
import type { GatewayServices } from '../services.js';
import type { GatewayMetrics } from '../metrics.js';

interface HealthPluginOptions {
  services: Pick<GatewayServices, 'database' | 'notifier'>;
  metrics: GatewayMetrics;
  /** Milliseconds /readyz waits for the database. */
  readinessTimeoutMs: number;
  /**
   * `detailed`: /readyz with the reason and NotifierInfo, and /metrics.
   * `public`: /readyz says only ready or not, and no /metrics; for the
   * public port when METRICS_PORT serves the details (database host names
   * are in the reason).
   */
  detail: 'detailed' | 'public';
}

/** /healthz (the process runs), /readyz (the database answers) and, when detailed, /metrics. */
export async function healthPlugin(app: FastifyInstance, options: HealthPluginOptions): Promise<void> {
  const { services, metrics } = options;
  const detailed = options.detail === 'detailed';

  app.get('/healthz', { config: { public: true } }, () => ({ status: 'ok' }));

  app.get('/readyz', { config: { public: true } }, async (_request, reply) => {
    const notifier = services.notifier.info;
    try {
      await withTimeout(services.database.query('SELECT 1'), options.readinessTimeoutMs, 'database check');
    } catch (err) {
      const reason = `database unavailable: ${(err as Error).message}`;
      return reply
        .code(503)
        .send(
          detailed
            ? { status: 'unavailable', reason, database: { ok: false, error: reason }, notifier }
            : { status: 'unavailable' },
        );
    }
    return detailed
      ? { status: 'ready', reason: null, database: { ok: true }, notifier }
      : { status: 'ready' };
  });

  if (!detailed) return;
  app.get('/metrics', { config: { public: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}

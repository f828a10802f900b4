import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describeError, NodebatchError, withTimeout } from '@nodebatch/progress';
import type { QueueCheck } from '@nodebatch/runtime';
import type { Logger } from 'pino';

/**
 * What the worker's probes see. Liveness is what a restart can fix: an event
 * loop that stalls, or a consumer whose job loop ended while the worker was
 * not stopping (it would hold no job and take none, forever). Readiness is
 * what the worker needs to do work: the queue and the event log answer. A
 * database or Redis outage makes the worker not ready, never not live:
 * restarting it would not bring them back.
 */
export interface HealthReport {
  ok: boolean;
  /** For a failure: what failed, in a sentence; null when ok. */
  reason: string | null;
  checks: Record<string, { ok: boolean; error?: string }>;
}

export interface WorkerHealth {
  liveness(): HealthReport;
  readiness(): Promise<HealthReport>;
  /** Stops the event-loop monitor. */
  stop(): void;
}

/** The parts of the worker the probes look at. */
export interface WorkerHealthSources {
  consumer: { readonly running: boolean; check(timeoutMs?: number): Promise<QueueCheck> };
  /** A cheap read of the event log (its head position). */
  readEventLog(): Promise<unknown>;
  /** True once the worker began to stop: a consumer that stopped then is expected. */
  stopping(): boolean;
}

export interface WorkerHealthOptions {
  /**
   * Liveness fails while the event loop was held longer than this, in ms, in
   * the current or the previous window. Default 10000: past the job lock's
   * renewal (every 7.5 s by default), so a worker this stalled loses its jobs.
   */
  maxEventLoopDelayMs?: number;
  /** Window of the event-loop measure, ms. Default 10000 (a probe period). */
  eventLoopWindowMs?: number;
  /** How long one readiness check may wait for the queue and the database, ms. Default 2000. */
  checkTimeoutMs?: number;
}

export function createWorkerHealth(
  sources: WorkerHealthSources,
  options: WorkerHealthOptions = {},
): WorkerHealth {
  const maxDelayMs = options.maxEventLoopDelayMs ?? 10_000;
  const checkTimeoutMs = options.checkTimeoutMs ?? 2000;
  // The histogram keeps the longest delay of the loop; a rotating window forgets an old stall.
  const histogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  let previousWindowMaxMs = 0;
  const rotate = setInterval(() => {
    previousWindowMaxMs = histogram.max / 1e6;
    histogram.reset();
  }, options.eventLoopWindowMs ?? 10_000);
  rotate.unref();

  return {
    liveness() {
      const delayMs = Math.max(previousWindowMaxMs, histogram.max / 1e6);
      const loop =
        delayMs > maxDelayMs
          ? {
              ok: false,
              error: `the event loop was held for ${Math.round(delayMs)} ms (more than ${maxDelayMs} ms)`,
            }
          : { ok: true };
      const consumer =
        sources.consumer.running || sources.stopping()
          ? { ok: true }
          : { ok: false, error: 'the queue consumer stopped taking jobs while the worker was not stopping' };
      return report({ eventLoop: loop, consumer });
    },
    async readiness() {
      const [queue, database] = await Promise.all([
        sources.consumer.check(checkTimeoutMs),
        withTimeout(sources.readEventLog(), checkTimeoutMs, 'the event log read').then(
          () => ({ ok: true as const }),
          (err: unknown) => ({ ok: false as const, error: describeError(err) }),
        ),
      ]);
      const stopping = sources.stopping() ? { ok: false, error: 'the worker is stopping' } : { ok: true };
      return report({ queue, database, stopping });
    },
    stop() {
      clearInterval(rotate);
      histogram.disable();
    },
  };
}

function report(checks: HealthReport['checks']): HealthReport {
  const failed = Object.entries(checks).filter(([, check]) => !check.ok);
  return {
    ok: failed.length === 0,
    reason: failed.length === 0 ? null : failed.map(([name, check]) => `${name}: ${check.error}`).join('; '),
    checks,
  };
}

/** The health probes cannot be served: the port is taken or not allowed. */
export class HealthPortError extends NodebatchError {
  constructor(port: number, cause: Error) {
    super(
      'HEALTH_PORT_UNAVAILABLE',
      `cannot serve the worker's health probes on port ${port} (WORKER_HEALTH_PORT): ${describeError(cause)}; choose a free port, or unset WORKER_HEALTH_PORT to serve none`,
      { cause },
    );
  }
}

export interface HealthServer {
  /** `http://host:port` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * GET /healthz (liveness) and GET /readyz (readiness): 200 or 503 with the
 * report as JSON. The worker serves nothing else; the reasons may name the
 * database host, so the port stays inside the cluster (the NetworkPolicy
 * admits no one to the worker; the kubelet's probes come from the node).
 */
export async function startHealthServer(options: {
  health: WorkerHealth;
  port: number;
  /** Default 0.0.0.0 (the kubelet probes the pod's address). */
  host?: string;
  logger: Logger;
}): Promise<HealthServer> {
  const { health, logger } = options;
  // Probe paths now failing: one log line when a probe starts failing and one when it recovers.
  const failing = new Set<string>();
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const answer = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(body));
    };
    if (request.method !== 'GET' || (path !== '/healthz' && path !== '/readyz')) {
      answer(404, { status: 'not found', reason: 'GET /healthz or /readyz' });
      return;
    }
    const probe = path === '/healthz' ? Promise.resolve(health.liveness()) : health.readiness();
    probe.then(
      (result) => {
        if (!result.ok && !failing.has(path)) {
          failing.add(path);
          logger.warn({ probe: path, reason: result.reason }, 'worker health check fails');
        } else if (result.ok && failing.delete(path)) {
          logger.info({ probe: path }, 'worker health check passes again');
        }
        answer(result.ok ? 200 : 503, { status: result.ok ? 'ok' : 'unavailable', ...result });
      },
      (err: unknown) => {
        logger.warn({ err, probe: path }, 'worker health check could not run');
        answer(500, { status: 'error', reason: describeError(err) });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new HealthPortError(options.port, err)));
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { createLogger, loadConfig, logConfigWarnings } from '@nodebatch/config';
import { withTimeout } from '@nodebatch/progress';
import { startWorker } from '@nodebatch/worker';

/** Beyond the worker's grace period, how long its close may take before the process exits anyway. */
const CLOSE_MARGIN_MS = 25_000;

function positiveMs(value: string): number {
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0)
    throw new InvalidArgumentError(`expected a whole number of ms > 0, got ${value}`);
  return ms;
}

/**
 * `nodebatch worker`: runs batch jobs from the queue (Redis when configured,
 * else PostgreSQL) against the configured cluster. SIGTERM stops taking jobs,
 * lets in-flight nodes finish within WORKER_SHUTDOWN_GRACE_MS and hands the
 * rest back to the queue for another worker.
 */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run batch node operations from the queue and append their progress events')
    .option(
      '--lock-duration-ms <ms>',
      'how long a job stays locked by a worker that died before another takes it over (default 15000)',
      positiveMs,
    )
    .option(
      '--stalled-interval-ms <ms>',
      'how often to look for jobs of dead workers (default 10000)',
      positiveMs,
    )
    .action(async (options: { lockDurationMs?: number; stalledIntervalMs?: number }) => {
      const { config, warnings } = loadConfig();
      const logger = createLogger({ level: config.log.level, name: 'worker' });
      logConfigWarnings(logger, warnings);
      const worker = await startWorker({
        config,
        logger,
        queue: {
          ...(options.lockDurationMs !== undefined && { lockDurationMs: options.lockDurationMs }),
          ...(options.stalledIntervalMs !== undefined && { stalledIntervalMs: options.stalledIntervalMs }),
        },
      });
      // The parent (tests, the demo, an orchestrator) reads this line to learn which worker this is.
      process.stdout.write(`${JSON.stringify({ workerId: worker.id, healthUrl: worker.healthUrl })}\n`);
      const stop = (signal: NodeJS.Signals) => {
        logger.info({ signal }, 'stopping the worker');
        // The worker's own close hands jobs back within the grace period and
        // then forces; past that and a margin, connections that never let go
        // (a blocked fetch on a Redis Cluster node that restarted) must not
        // keep the process from exiting.
        withTimeout(
          worker.close(),
          config.worker.shutdownGraceMs + CLOSE_MARGIN_MS,
          'closing the worker',
        ).then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'the worker did not close cleanly');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}

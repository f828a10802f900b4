/**
 * A worker as its own process, for tests that kill one with SIGKILL: what
 * `nodebatch worker` does, configured from the environment, with short queue
 * locks so a dead worker's job is taken over within seconds.
 *
 *   node --conditions=source --import tsx worker-process.ts <lockDurationMs> <stalledIntervalMs>
 *
 * Prints `{"workerId": "..."}` on stdout once it waits for jobs.
 */
import { createLogger, loadConfig } from '@nodebatch/config';
import { startWorker } from '../start-worker.js';

const [lockDurationMs = '2000', stalledIntervalMs = '1000'] = process.argv.slice(2);
const { config } = loadConfig();
const logger = createLogger({ level: config.log.level, name: 'worker' });
const worker = await startWorker({
  config,
  logger,
  queue: { lockDurationMs: Number(lockDurationMs), stalledIntervalMs: Number(stalledIntervalMs) },
});
process.stdout.write(`${JSON.stringify({ workerId: worker.id })}\n`);
const stop = () => {
  worker.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

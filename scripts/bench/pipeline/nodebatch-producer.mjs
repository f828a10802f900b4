/**
 * The pipeline run's nodebatch worker (bench only, never part of the
 * product): a BullMQ Worker whose job body is the same as the BullMQ
 * baseline's (bullmq-producer.mjs): `events` progress events of the same
 * size, one after another, each appended through the runtime's notifier (one
 * transaction, with the transport's NOTIFY in it or its PUBLISH after it),
 * then the terminal event. No cluster, no drain, no batching of events: what
 * is measured is the event pipeline alone.
 *
 * The job's `append` says how it reports each event:
 * - `batched` (default): through the worker's event batcher
 *   (@nodebatch/worker createEventBatcher) and its append group
 *   (createAppendGroup), as `nodebatch worker` does: events pushed while an
 *   append is in flight share the next transaction, and so do the batches of
 *   the process's jobs that wait at the same time; the job ends once all are
 *   appended. The event's time is its push time, so its wait in the batcher
 *   counts in every latency. A job with MAX_OUTSTANDING events not yet
 *   appended waits before it makes the next (back-pressure).
 * - `each`: one awaited append per event, like an awaited job.updateProgress.
 *
 * Plain JavaScript run by plain `node`: it imports the packages' built output
 * (dist), like `nodebatch worker`.
 *
 * Env: the nodebatch configuration (DATABASE_URL, REDIS_URL,
 * PROGRESS_NOTIFY_TYPE, PROGRESS_HINT_KEY: the gateways' key, so that its
 * notifications are signed, ...), BENCH_QUEUE, BENCH_CONCURRENCY.
 * Prints {"ready": true} when it takes jobs, then {"job": id, "firstEventAt",
 * "lastReportedAt", "appendMs": [...]} per finished job: wall ms of its first
 * event made and of its last progress event appended, and for each event the
 * ms from its time (when the job made it) to its append returning (committed,
 * and for redis published), so its wait in the batcher counts.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, loadConfig } from '@nodebatch/config';
import { createRuntime } from '@nodebatch/runtime';
import { createAppendGroup, createEventBatcher } from '@nodebatch/worker';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * The most events a batched job has pushed and not yet seen appended: two
 * batches of the batcher (one in flight, one filling). Without a bound the
 * max run pushed every event at once and each waited behind all earlier
 * batches, which measured the job's backlog rather than the pipeline.
 */
const MAX_OUTSTANDING = 200;

const queueName = process.env.BENCH_QUEUE;
if (!queueName) throw new Error('BENCH_QUEUE is not set');
const { config } = loadConfig();
const logger = createLogger({ level: 'warn', name: 'bench-producer' });
const runtime = await createRuntime({ config, logger, retention: false });
/** The process's jobs' batches share transactions, as in `nodebatch worker`. */
const groupAppend = createAppendGroup({
  appendMany: (batches) => runtime.notifier.appendMany(batches),
  append: (id, batch, options) => runtime.notifier.append(id, batch, options),
});

const worker = new Worker(
  queueName,
  /** @param {import('bullmq').Job<{taskId: string, events: number, paceMs: number, node: string, message: string, append?: string}>} job */
  async (job) => {
    const { taskId, events, paceMs, node, message, append: mode = 'batched' } = job.data;
    if (mode !== 'batched' && mode !== 'each')
      throw new Error(`job ${taskId}: append ${mode}: expected batched or each`);
    /** @type {number[]} */
    const appendMs = [];
    /** Events pushed to the batcher and not appended yet. */
    let outstanding = 0;
    /** Wakes the job when an append returned (see MAX_OUTSTANDING). */
    let appended = () => {};
    /** @type {import('@nodebatch/worker').AppendEvents} */
    const timedAppend = async (id, batch, options) => {
      // `each`: one transaction per event, never shared, like an awaited updateProgress.
      const stored = await (
        mode === 'batched' ? groupAppend : runtime.notifier.append.bind(runtime.notifier)
      )(id, batch, options);
      const returned = performance.timeOrigin + performance.now();
      for (const event of batch) {
        if (event.time !== undefined)
          appendMs.push(Math.round((returned - Date.parse(event.time)) * 100) / 100);
      }
      outstanding -= batch.length;
      appended();
      return stored;
    };
    const batcher = mode === 'batched' ? createEventBatcher({ taskId, append: timedAppend }) : undefined;
    // Paced on an absolute schedule (event i due at start + i × paceMs), so that
    // timer overshoot and the time each report takes do not lower the rate.
    const startedAt = performance.now();
    let firstEventAt = 0;
    for (let done = 1; done <= events; done++) {
      if (paceMs > 0) {
        const wait = startedAt + done * paceMs - performance.now();
        if (wait > 0) await sleep(wait);
      }
      // Back-pressure, as a job that awaits its reports has: past MAX_OUTSTANDING
      // events not yet appended the job waits, and the next event is stamped
      // after the wait (BullMQ's job awaits each update).
      while (batcher && outstanding >= MAX_OUTSTANDING) {
        await new Promise((resolve) => (appended = resolve));
      }
      const now = Date.now();
      if (done === 1) firstEventAt = now;
      const event = {
        type: /** @type {const} */ ('NodeProgress'),
        time: new Date(now).toISOString(),
        data: { node, done, total: events, message },
      };
      if (batcher) {
        outstanding++;
        batcher.push(event);
      } else await timedAppend(taskId, [event]);
    }
    await batcher?.flush();
    const lastReportedAt = Date.now();
    await runtime.notifier.append(taskId, [
      {
        type: 'TaskCompleted',
        time: new Date().toISOString(),
        data: { succeeded: 1, failed: 0, skipped: 0 },
      },
    ]);
    process.stdout.write(`${JSON.stringify({ job: taskId, firstEventAt, lastReportedAt, appendMs })}\n`);
  },
  {
    connection: new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
      maxRetriesPerRequest: null,
    }),
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? '2'),
  },
);
await worker.waitUntilReady();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once('SIGTERM', () => {
  void worker
    .close()
    .then(() => runtime.close())
    .finally(() => process.exit(0));
});

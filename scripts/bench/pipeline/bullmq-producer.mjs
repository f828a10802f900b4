/**
 * The BullMQ baseline's worker: the same job body as the nodebatch pipeline
 * worker (nodebatch-producer.mjs): `events` progress updates of the same
 * data, one after another, with `paceMs` before each (0 = as fast as
 * possible), each through job.updateProgress. Plain `node`, no loader.
 * Prints {"ready": true} when it takes jobs, then {"job": id, "firstEventAt",
 * "lastReportedAt"} per finished job (wall ms: its first event made, its last
 * updateProgress returned).
 *
 * Env: REDIS_URL, BENCH_QUEUE, BENCH_CONCURRENCY.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const queueName = process.env.BENCH_QUEUE;
if (!queueName) throw new Error('BENCH_QUEUE is not set');

const worker = new Worker(
  queueName,
  /** @param {import('bullmq').Job<{events: number, paceMs: number, node: string, message: string}>} job */
  async (job) => {
    const { events, paceMs, node, message } = job.data;
    // Seq 1 is the gateway's "subscribed" message (a nodebatch stream's TaskCreated); the completion takes the last seq.
    // Paced on an absolute schedule (event i due at start + i × paceMs), so that
    // timer overshoot and the time each report takes do not lower the rate.
    const startedAt = performance.now();
    let firstEventAt = 0;
    for (let done = 1; done <= events; done++) {
      if (paceMs > 0) {
        const wait = startedAt + done * paceMs - performance.now();
        if (wait > 0) await sleep(wait);
      }
      const time = Date.now();
      if (done === 1) firstEventAt = time;
      await job.updateProgress({ seq: done + 1, time, node, done, total: events, message });
    }
    const lastReportedAt = Date.now();
    process.stdout.write(`${JSON.stringify({ job: job.id, firstEventAt, lastReportedAt })}\n`);
    return { seq: events + 2 };
  },
  {
    connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? '2'),
  },
);
await worker.waitUntilReady();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once('SIGTERM', () => {
  void worker.close().finally(() => process.exit(0));
});

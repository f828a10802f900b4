/**
 * The BullMQ baseline's worker: each job reports `events` progress updates
 * with job.updateProgress({ seq, time }), one after another (as a batch
 * reports its steps), with `paceMs` between them (0 = as fast as possible).
 * Prints {"ready": true} when it takes jobs.
 *
 * Env: REDIS_URL, BENCH_QUEUE, BENCH_CONCURRENCY.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const queueName = process.env.BENCH_QUEUE;
if (!queueName) throw new Error('BENCH_QUEUE is not set');

const worker = new Worker<{ events: number; paceMs: number }, { seq: number }>(
  queueName,
  async (job) => {
    const { events, paceMs } = job.data;
    // Seq 1 is the gateway's "subscribed" message; progress starts at 2 and the completion takes the next seq.
    for (let seq = 2; seq < events + 2; seq++) {
      if (paceMs > 0) await sleep(paceMs);
      await job.updateProgress({ seq, time: Date.now() });
    }
    return { seq: events + 2 };
  },
  {
    connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? '4'),
  },
);
await worker.waitUntilReady();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once('SIGTERM', () => {
  void worker.close().finally(() => process.exit(0));
});

import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { uniqueName } from '@nodebatch/testkit';
import { readCpuSeconds, type BenchChild, type ChildSet } from '../children.js';
import { awaitCompletion, openSubscribers, summarize, type RunResult } from '../measure.js';
import type { BenchOptions } from '../options.js';
import type { SseMessage } from '../sse-subscriber.js';

const GATEWAY_SCRIPT = fileURLToPath(new URL('./bullmq-gateway.ts', import.meta.url));
const PRODUCER_SCRIPT = fileURLToPath(new URL('./bullmq-producer.ts', import.meta.url));

export interface BullmqRunPlan {
  kind: 'paced' | 'max';
  /** Progress updates per job (the nodebatch run's events per task, without TaskCreated and the terminal event). */
  eventsPerJob: number;
  /** Pause before each updateProgress, ms (0 = as fast as possible). */
  paceMs: number;
}

function parseMessage(data: string): SseMessage {
  const message = JSON.parse(data) as { seq: number; time: number; terminal?: boolean };
  return { seq: message.seq, time: message.time, terminal: message.terminal === true };
}

/**
 * The peer a user would otherwise pick: BullMQ job.updateProgress in W worker
 * processes, one QueueEvents 'progress' listener in each of G gateway
 * processes fanning out to SSE subscribers; same tasks (jobs), subscribers
 * and events as the nodebatch runs. Unique queue name; nothing else in Redis
 * is touched.
 */
export async function runBullmqBaseline(
  options: BenchOptions,
  children: ChildSet,
  redisUrl: string,
  plans: BullmqRunPlan[],
  log: (line: string) => void,
): Promise<RunResult[]> {
  const timeoutMs = options.timeoutS * 1000;
  const queueName = uniqueName('nb_bench_bullmq');
  const env = {
    REDIS_URL: redisUrl,
    BENCH_QUEUE: queueName,
    BENCH_CONCURRENCY: String(Math.ceil(options.tasks / options.workers)),
  };
  const started: BenchChild[] = [];
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection });
  const results: RunResult[] = [];
  try {
    log(
      `bullmq: starting ${options.gateways} QueueEvents gateway(s) and ${options.workers} worker(s) (queue ${queueName})`,
    );
    const gateways = Array.from({ length: options.gateways }, (_, i) =>
      children.spawn(`bullmq-gateway-${i + 1}`, ['--import', 'tsx', GATEWAY_SCRIPT], env),
    );
    const producers = Array.from({ length: options.workers }, (_, i) =>
      children.spawn(`bullmq-worker-${i + 1}`, ['--import', 'tsx', PRODUCER_SCRIPT], env),
    );
    started.push(...gateways, ...producers);
    const ports = await Promise.all(gateways.map((gateway) => gateway.waitForLine('port', timeoutMs)));
    await Promise.all(producers.map((producer) => producer.waitForLine('ready', timeoutMs)));
    const urls = ports.map((line) => `http://127.0.0.1:${String(line.port)}`);

    for (const plan of plans) {
      const jobIds = Array.from({ length: options.tasks }, (_, t) => `${plan.kind}-${t + 1}`);
      const streamUrls = Array.from(
        { length: options.subscribers },
        (_, i) => `${urls[i % urls.length]!}/jobs/${jobIds[i % jobIds.length]!}/events`,
      );
      const group = await openSubscribers(streamUrls, options.subscribers, parseMessage, timeoutMs, true);
      log(
        `bullmq/${plan.kind}: ${options.subscribers} subscribers live; adding ${jobIds.length} jobs of ${plan.eventsPerJob} progress updates`,
      );
      const cpuBefore = {
        gateways: sumCpu(gateways),
        workers: sumCpu(producers),
        clients: process.cpuUsage(),
      };
      await queue.addBulk(
        jobIds.map((jobId) => ({
          name: 'batch',
          data: { events: plan.eventsPerJob, paceMs: plan.paceMs },
          opts: { jobId, removeOnComplete: true },
        })),
      );
      const finished = await awaitCompletion(group, timeoutMs);
      const clientCpu = process.cpuUsage(cpuBefore.clients);
      const cpuSeconds = {
        gateways: sumCpu(gateways) - cpuBefore.gateways,
        workers: sumCpu(producers) - cpuBefore.workers,
        clients: (clientCpu.user + clientCpu.system) / 1e6,
      };
      for (const subscriber of group.subscribers) subscriber.close();
      const run: RunResult = {
        transport: 'bullmq',
        kind: plan.kind,
        subscribers: options.subscribers,
        tasks: options.tasks,
        paceMs: plan.paceMs,
        cpuSeconds,
        ...summarize(group, jobIds.length * (plan.eventsPerJob + 1), () => plan.eventsPerJob + 2),
      };
      results.push(run);
      log(
        `bullmq/${plan.kind}: ${run.events} events in ${(run.windowMs / 1000).toFixed(2)} s = ${run.eventsPerSec.toFixed(0)} events/s; ` +
          `p50 ${run.latencyMs.p50.toFixed(1)} ms, p99 ${run.latencyMs.p99.toFixed(1)} ms, max ${run.latencyMs.max.toFixed(1)} ms; ` +
          `lost ${run.lost}, duplicated ${run.duplicated}${finished ? '' : `, ${run.incomplete} subscribers INCOMPLETE after ${options.timeoutS} s`}`,
      );
    }
    return results;
  } finally {
    await children.stop(started);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
    connection.disconnect();
  }
}

function sumCpu(children: BenchChild[]): number {
  return children.reduce((sum, child) => sum + readCpuSeconds(child.pid), 0);
}

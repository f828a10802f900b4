/**
 * The pipeline runs: nodebatch's event pipeline and the BullMQ baseline
 * executing the identical job body (pipeline/*-producer.mjs): per job, N
 * progress events of the same size appended one after another, then the
 * terminal one; same jobs, subscribers, processes and pacing, no cluster work.
 * Every measured process is plain `node` on built output.
 */
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { uniqueName } from '@nodebatch/testkit';
import { machineShares, readMachineCpu, sumCpu, type BenchChild } from './children.js';
import { summarize, type RunResult } from './measure.js';
import type { SseClientPool, StreamFormat } from './sse-clients.js';
import type { Quantiles } from './stage-timing.js';

export const NODEBATCH_PRODUCER = fileURLToPath(
  new URL('./pipeline/nodebatch-producer.mjs', import.meta.url),
);
export const BULLMQ_PRODUCER = fileURLToPath(new URL('./pipeline/bullmq-producer.mjs', import.meta.url));
export const BULLMQ_GATEWAY = fileURLToPath(new URL('./pipeline/bullmq-gateway.mjs', import.meta.url));

/** The node name and message every progress event of a pipeline job carries (same bytes on both sides). */
const PIPELINE_NODE = 'sim-node-1';
const PIPELINE_MESSAGE = 'x'.repeat(64);

/** One pipeline workload. */
export interface PipelinePlan {
  kind: 'paced' | 'max';
  subscribers: number;
  /** Gateways used (the first N of the system's); subscriber i goes to gateway i mod N. */
  gateways: number;
  tasks: number;
  /** Progress events per job, before the terminal one. */
  eventsPerTask: number;
  /** Pause before each event, ms (0 = as fast as possible); events follow an absolute schedule, so it may be below 1. */
  paceMs: number;
  /** A paced run at the rate another run reached: 'bullmq-max', the BullMQ baseline's max run. */
  atRateOf?: 'bullmq-max';
  /**
   * How nodebatch's job reports events: through the worker's event batcher
   * (`batched`, what `nodebatch worker` does) or one awaited append each
   * (`each`, like an awaited updateProgress). BullMQ always awaits each. Default batched.
   */
  append?: 'batched' | 'each';
}

/** What runs a pipeline workload: gateways serving SSE and producers taking jobs from `queue`. */
export interface PipelineSystem {
  /** 'postgres' | 'redis' | 'polling' | 'bullmq'. */
  name: string;
  urls: string[];
  gateways: BenchChild[];
  producers: BenchChild[];
  /** Where the jobs go: the producers' BullMQ queue. */
  queue: Queue;
  /** Makes a task id the gateways can stream before any progress (nodebatch: TaskCreated in the log). */
  createTask(id: string): Promise<string>;
  /** The stream of a task under a gateway URL. */
  streamUrl(gatewayUrl: string, taskId: string): string;
  format: StreamFormat;
  /** The SSE client processes that subscribe to it (the observers, not part of the system). */
  clients: SseClientPool;
}

interface PipelineRun {
  run: RunResult;
  taskIds: string[];
  /** Per event, from its time to its append returning (batcher wait and commit), as the nodebatch producers reported, ms. */
  appendMs: number[];
  /** Event-loop delay of the SSE client process with the largest p99, live to done (`clientDelay` runs). */
  clientDelay?: Quantiles;
}

/**
 * What the producers printed for these tasks' jobs, one line per job:
 * {"job": id, "firstEventAt", "lastReportedAt" (wall ms), "appendMs"?: [...]}.
 * A producer prints a job's line right after its terminal report, so the
 * line may trail the subscribers' terminal event by a moment: waits for every
 * task's line, 1 s at most.
 */
async function jobLines(
  producers: BenchChild[],
  taskIds: Set<string>,
): Promise<Array<Record<string, unknown>>> {
  const printed = () =>
    producers.flatMap((producer) => producer.lines('job')).filter((line) => taskIds.has(String(line.job)));
  const deadline = Date.now() + 1000;
  while (printed().length < taskIds.size && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 10));
  return printed();
}

/**
 * The rate at which the jobs got their events through their reporting call
 * (nodebatch: appended; BullMQ: updateProgress returned), from the first
 * event made to the last one reported. Above the delivered rate, the rest
 * waited between the transport and the subscribers.
 */
function reportedPerSec(lines: Array<Record<string, unknown>>, events: number): number | undefined {
  const first = Math.min(...lines.map((line) => Number(line.firstEventAt)));
  const last = Math.max(...lines.map((line) => Number(line.lastReportedAt)));
  return Number.isFinite(first) && Number.isFinite(last) && last > first
    ? events / ((last - first) / 1000)
    : undefined;
}

/**
 * Runs one workload on a system: creates the tasks, opens the subscribers
 * (all live before any job exists), adds one job per task, waits for every
 * subscriber's terminal event and accounts for every seq 1..N+2 of each.
 */
export async function runPipeline(
  system: PipelineSystem,
  plan: PipelinePlan,
  label: string,
  timeoutMs: number,
  hooks: {
    /** Told the task ids before any job exists (e.g. to time their notifications). */
    tasks?(taskIds: readonly string[]): Promise<void>;
    /** Every subscriber is live and no job exists yet (e.g. to read the gateways' counters). */
    live?(): Promise<void>;
    /** Sample the SSE client processes' event-loop delay from live to done (the stage table). */
    clientDelay?: boolean;
  } = {},
): Promise<PipelineRun> {
  const taskIds: string[] = [];
  for (let t = 0; t < plan.tasks; t++) taskIds.push(await system.createTask(uniqueName(`${label}-${t + 1}`)));
  await hooks.tasks?.(taskIds);
  const urls = system.urls.slice(0, plan.gateways);
  const gateways = system.gateways.slice(0, plan.gateways);
  const streamUrls = Array.from({ length: plan.subscribers }, (_, i) =>
    system.streamUrl(urls[i % urls.length]!, taskIds[i % taskIds.length]!),
  );
  const group = await system.clients.open(
    streamUrls,
    { format: system.format, timed: true, monitorDelay: hooks.clientDelay === true },
    timeoutMs,
  );
  await hooks.live?.();
  const cpuBefore = {
    gateways: sumCpu(gateways),
    workers: sumCpu(system.producers),
    clients: system.clients.cpuSeconds(),
  };
  const machineBefore = readMachineCpu();
  await system.queue.addBulk(
    taskIds.map((taskId) => ({
      name: 'pipeline',
      data: {
        taskId,
        events: plan.eventsPerTask,
        paceMs: plan.paceMs,
        node: PIPELINE_NODE,
        message: PIPELINE_MESSAGE,
        append: plan.append ?? 'batched',
      },
      opts: { jobId: taskId, removeOnComplete: true, removeOnFail: true },
    })),
  );
  // A subscriber still without its terminal event after the limit is counted as incomplete.
  await group.awaitCompletion(timeoutMs);
  const machineAfter = readMachineCpu();
  const cpuSeconds = {
    gateways: sumCpu(gateways) - cpuBefore.gateways,
    workers: sumCpu(system.producers) - cpuBefore.workers,
    clients: system.clients.cpuSeconds() - cpuBefore.clients,
  };
  const report = await group.report(timeoutMs);
  const jobs = await jobLines(system.producers, new Set(taskIds));
  const reported =
    jobs.length === taskIds.length ? reportedPerSec(jobs, plan.tasks * plan.eventsPerTask) : undefined;
  // TaskCreated (or "subscribed") is seq 1, the events 2..N+1, the terminal event N+2.
  const lastSeq = plan.eventsPerTask + 2;
  const run: RunResult = {
    transport: system.name,
    kind: plan.kind,
    workload: 'pipeline',
    ...(system.name === 'bullmq' ? {} : { append: plan.append ?? 'batched' }),
    subscribers: plan.subscribers,
    gateways: plan.gateways,
    tasks: plan.tasks,
    paceMs: plan.paceMs,
    ...(plan.atRateOf && { atRateOf: plan.atRateOf }),
    cpuSeconds,
    ...(reported !== undefined && { reportedPerSec: reported }),
    ...machineShares(machineBefore, machineAfter),
    ...summarize(report, plan.tasks * (plan.eventsPerTask + 1), () => lastSeq),
  };
  return {
    run,
    taskIds,
    appendMs: jobs.flatMap((line) => (Array.isArray(line.appendMs) ? (line.appendMs as number[]) : [])),
    ...(report.delay && { clientDelay: report.delay }),
  };
}

/** A BullMQ queue the producers of one system take their jobs from, with its own connection. */
interface JobQueue {
  queue: Queue;
  /** Removes the queue's keys and closes the connection. */
  drop(): Promise<void>;
}

export function createJobQueue(redisUrl: string): JobQueue {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(uniqueName('nb_bench_jobs'), { connection });
  return {
    queue,
    drop: async () => {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close().catch(() => undefined);
      connection.disconnect();
    },
  };
}

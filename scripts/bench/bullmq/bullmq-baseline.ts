import type { BenchChild, ChildSet } from '../children.js';
import type { RunResult } from '../measure.js';
import type { BenchOptions } from '../options.js';
import {
  BULLMQ_GATEWAY,
  BULLMQ_PRODUCER,
  createJobQueue,
  runPipeline,
  type PipelinePlan,
  type PipelineSystem,
} from '../pipeline-phase.js';
import type { SseClientPool } from '../sse-clients.js';

/**
 * The peer a user would otherwise pick: BullMQ job.updateProgress in W worker
 * processes (the same job body as nodebatch's pipeline producers), one
 * QueueEvents 'progress' listener in each of G gateway processes fanning out
 * to SSE subscribers; same plans (jobs, subscribers, events, pacing) as the
 * nodebatch pipeline runs. Unique queue name; nothing else in Redis is touched.
 */
export async function runBullmqBaseline(
  options: BenchOptions,
  children: ChildSet,
  redisUrl: string,
  /** `warmUp` runs first and is not recorded (see the nodebatch phases' warm-up). */
  plans: { warmUp: PipelinePlan; measured: PipelinePlan[] },
  clients: SseClientPool,
  log: (line: string) => void,
): Promise<{ runs: RunResult[]; warmUp: RunResult }> {
  const timeoutMs = options.timeoutS * 1000;
  const jobs = createJobQueue(redisUrl);
  const env = {
    REDIS_URL: redisUrl,
    BENCH_QUEUE: jobs.queue.name,
    BENCH_CONCURRENCY: String(Math.ceil(options.tasks / options.workers)),
  };
  const started: BenchChild[] = [];
  const results: RunResult[] = [];
  try {
    const gatewayCount = Math.max(...[plans.warmUp, ...plans.measured].map((plan) => plan.gateways));
    log(
      `bullmq: starting ${gatewayCount} QueueEvents gateway(s) and ${options.workers} worker(s) (queue ${jobs.queue.name})`,
    );
    const gateways = Array.from({ length: gatewayCount }, (_, i) =>
      children.spawn(`bullmq-gateway-${i + 1}`, [BULLMQ_GATEWAY], env),
    );
    const producers = Array.from({ length: options.workers }, (_, i) =>
      children.spawn(`bullmq-worker-${i + 1}`, [BULLMQ_PRODUCER], env),
    );
    started.push(...gateways, ...producers);
    const ports = await Promise.all(gateways.map((gateway) => gateway.waitForLine('port', timeoutMs)));
    await Promise.all(producers.map((producer) => producer.waitForLine('ready', timeoutMs)));
    const system: PipelineSystem = {
      name: 'bullmq',
      urls: ports.map((line) => `http://127.0.0.1:${String(line.port)}`),
      gateways,
      producers,
      queue: jobs.queue,
      createTask: (id) => Promise.resolve(id),
      streamUrl: (url, jobId) => `${url}/jobs/${encodeURIComponent(jobId)}/events`,
      format: 'bullmq',
      clients,
    };
    const { run: warmUp } = await runPipeline(system, plans.warmUp, 'bullmq-warm-up', timeoutMs);
    log(
      `bullmq/warm-up: ${warmUp.events} events at ${warmUp.eventsPerSec.toFixed(0)} events/s (not recorded)`,
    );
    for (const plan of plans.measured) {
      const { run } = await runPipeline(system, plan, `bullmq-${plan.kind}`, timeoutMs);
      results.push(run);
      log(
        `bullmq/${plan.kind}: ${run.events} events in ${(run.windowMs / 1000).toFixed(2)} s = ${run.eventsPerSec.toFixed(0)} events/s; ` +
          `p50 ${run.latencyMs.p50.toFixed(1)} ms, p99 ${run.latencyMs.p99.toFixed(1)} ms, max ${run.latencyMs.max.toFixed(1)} ms; ` +
          `lost ${run.lost}, duplicated ${run.duplicated}${run.incomplete ? `, ${run.incomplete} subscribers INCOMPLETE` : ''}`,
      );
    }
    return { runs: results, warmUp };
  } finally {
    await children.stop(started);
    await jobs.drop();
  }
}

import { fileURLToPath } from 'node:url';
import { createEventStore } from '@nodebatch/event-store';
import { createTestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
import type { BenchChild } from './children.js';
import {
  type IdleResult,
  measureIdle,
  nodebatchEnv,
  spawnNodebatch,
  type PhaseContext,
} from './nodebatch-phase.js';
import type { TransportName } from './options.js';
import { DatabaseLoad } from './pg-stats.js';
import type { RoundTrip } from './raw-floor.js';
import {
  createJobQueue,
  NODEBATCH_PRODUCER,
  runPipeline,
  type PipelinePlan,
  type PipelineSystem,
} from './pipeline-phase.js';
import type { RunResult } from './measure.js';
import {
  HintListener,
  lagQuantiles,
  quantiles,
  readGatewayMetrics,
  type LagBuckets,
  type StageBreakdown,
} from './stage-timing.js';

/** The durable round trip sampled in a process of its own while the paced run goes on. */
const LOADED_FLOOR = fileURLToPath(new URL('./pipeline/loaded-floor.mjs', import.meta.url));

/** A pipeline workload of the phase, and whether its stages are timed. */
export interface NodebatchPipelineStep {
  plan: PipelinePlan;
  /**
   * Time each stage. 'all': with the observers of their own (the hint
   * listener, the loaded durable floor), for the paced run; 'own': only what
   * the pipeline's own processes tell (the producers' append times, the
   * gateways' histogram, the clients), so that a max run's throughput is not
   * shared with extra processes.
   */
  stages?: 'all' | 'own';
  /**
   * Which table the run belongs to; 'warm-up': none. The first max run
   * through fresh gateway and SSE client processes cost them more CPU per
   * event than the same run repeated, so each system makes one unrecorded.
   */
  table: 'pipeline' | 'scale' | 'warm-up';
}

interface NodebatchPipelineResult {
  runs: RunResult[];
  scale: RunResult[];
  stages: StageBreakdown[];
  warmUps: RunResult[];
  idle?: IdleResult;
}

/**
 * One transport's pipeline runs: a fresh database, as many gateways as the
 * largest step uses (`nodebatch gateway`, built output) and W producers
 * (pipeline/nodebatch-producer.mjs) taking jobs from a bench queue. Idle
 * subscribers are measured first, on the same gateways.
 */
export async function runNodebatchPipeline(
  context: PhaseContext,
  transport: TransportName,
  steps: NodebatchPipelineStep[],
  idle: boolean,
): Promise<NodebatchPipelineResult> {
  const { options, children, log } = context;
  const timeoutMs = options.timeoutS * 1000;
  const database = await createTestDatabase({ serverUrl: context.serverUrl, prefix: 'nb_bench_pipe' });
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const store = createEventStore({ pool });
  const jobs = createJobQueue(context.redisUrl);
  const started: BenchChild[] = [];
  const result: NodebatchPipelineResult = { runs: [], scale: [], stages: [], warmUps: [] };
  const env = nodebatchEnv(context, transport, database.url, 1);
  try {
    const gateways: BenchChild[] = [];
    const urls: string[] = [];
    // Gateways are started as the steps need them: an idle gateway still
    // receives every notification, and the pipeline runs should not pay for
    // the scale table's extra ones.
    const ensureGateways = async (count: number): Promise<void> => {
      if (gateways.length >= count) return;
      log(`${transport}/pipeline: starting gateway(s) ${gateways.length + 1} to ${count}`);
      const more = Array.from({ length: count - gateways.length }, (_, i) =>
        spawnNodebatch(context, 'gateway', `${transport}-pipeline-gateway-${gateways.length + i + 1}`, {
          ...env,
          PORT: '0',
        }),
      );
      started.push(...more);
      const lines = await Promise.all(more.map((gateway) => gateway.waitForLine('port', timeoutMs)));
      gateways.push(...more);
      urls.push(
        ...lines.map((line) =>
          String(line.gatewayUrl ?? `http://127.0.0.1:${String(line.port)}`).replace(/\/$/, ''),
        ),
      );
    };
    log(`${transport}/pipeline: starting ${options.workers} producer(s)`);
    const producers = Array.from({ length: options.workers }, (_, i) =>
      context.children.spawn(`${transport}-pipeline-producer-${i + 1}`, [NODEBATCH_PRODUCER], {
        ...env,
        BENCH_QUEUE: jobs.queue.name,
        BENCH_CONCURRENCY: String(Math.ceil(options.tasks / options.workers)),
      }),
    );
    started.push(...producers);
    // The stage table's hint listener, a process of its own (polling sends no hints).
    const listening =
      transport !== 'polling' && steps.some((step) => step.stages === 'all')
        ? HintListener.start(
            children,
            `${transport}-hint-listener`,
            transport,
            { databaseUrl: database.url, redisUrl: context.redisUrl },
            timeoutMs,
          )
        : undefined;
    // Producers, gateways and the listener start side by side: no job exists before all are up.
    const [listener] = await Promise.all([
      listening,
      ensureGateways(Math.max(1, steps[0]?.plan.gateways ?? 1)),
      ...producers.map((producer) => producer.waitForLine('ready', timeoutMs)),
    ]);
    if (listener) started.push(listener.child);

    if (idle && options.idleSubscribers > 0) {
      const load = new DatabaseLoad(context.admin, database.name);
      result.idle = await measureIdle(context, load, pool, urls[0]!, gateways[0]!, timeoutMs);
      log(
        `${transport}: idle: ${(result.idle.rssPer1000Bytes / 1024).toFixed(0)} KiB RSS and ${result.idle.cpuPer1000PerMinute.toFixed(3)} CPU s/min per 1,000 idle subscribers`,
      );
    }

    const system: PipelineSystem = {
      name: transport,
      urls,
      gateways,
      producers,
      queue: jobs.queue,
      createTask: async (id) => {
        await store.append(id, [
          {
            type: 'TaskCreated',
            data: { userId: 'demo', action: 'cordon', nodes: ['sim-node-1'], params: {} },
          },
        ]);
        return id;
      },
      streamUrl: (url, taskId) => `${url}/api/v1/tasks/${taskId}/events`,
      format: 'stored',
      clients: context.clients,
    };
    for (const step of steps) {
      const { plan } = step;
      await ensureGateways(plan.gateways);
      const label = `${transport}-${plan.kind}-${plan.subscribers}x${plan.gateways}`;
      let lagBefore: LagBuckets | undefined;
      let floor: BenchChild | undefined;
      const observed = step.stages === 'all';
      const { run, appendMs, clientDelay } = await runPipeline(system, plan, label, timeoutMs, {
        tasks: async (taskIds) => {
          if (observed) await listener?.follow(taskIds, timeoutMs);
        },
        clientDelay: step.stages !== undefined,
        // After the subscribers got seq 1 (read from the log as they subscribed): only the run's events count.
        live: async () => {
          if (!step.stages) return;
          // Also restarts the gateways' event-loop delay histograms (reset by every scrape).
          lagBefore = (await readGatewayMetrics(urls.slice(0, plan.gateways))).lag;
          if (observed && transport !== 'polling') {
            floor = children.spawn(`${transport}-loaded-floor`, [LOADED_FLOOR], {
              DATABASE_URL: database.url,
              REDIS_URL: context.redisUrl,
              BENCH_FLOOR_TRANSPORT: transport,
            });
            started.push(floor);
            await floor.waitForLine('ready', timeoutMs);
          }
        },
      });
      const hints = observed ? await listener?.report(timeoutMs) : undefined;
      let loadedFloor: RoundTrip | undefined;
      if (floor) {
        await children.stop([floor]);
        loadedFloor = (await floor.waitForLine('floor', 5000)).floor as RoundTrip;
      }
      ({ scale: result.scale, pipeline: result.runs, 'warm-up': result.warmUps })[step.table].push(run);
      if (step.stages && lagBefore) {
        const after = await readGatewayMetrics(urls.slice(0, plan.gateways));
        result.stages.push({
          transport,
          kind: plan.kind,
          appendReturned: quantiles(appendMs),
          hintAtListener: hints && quantiles(hints.samples),
          gatewayWrite: lagQuantiles(lagBefore, after.lag),
          clientArrival: { p50: run.latencyMs.p50, p99: run.latencyMs.p99, count: run.deliveries },
          ...(loadedFloor && { loadedFloor: { ...loadedFloor, count: loadedFloor.samples } }),
          ...(hints?.delay && { listenerDelay: hints.delay }),
          ...(clientDelay && { clientDelay }),
          ...(after.loopDelay && { gatewayDelay: after.loopDelay }),
        });
      }
      log(describeRun(`${transport}/${step.table}`, run));
    }
    return result;
  } finally {
    await children.stop(started);
    await jobs.drop();
    await pool.end().catch(() => undefined);
    await database.drop().catch((err: unknown) => log(`could not drop ${database.name}: ${String(err)}`));
  }
}

/** One log line per run: the figures a reader checks first. */
function describeRun(label: string, run: RunResult): string {
  const cpu = run.cpuSeconds;
  return (
    `${label}/${run.kind} ${run.subscribers} subscribers × ${run.gateways} gateway(s): ${run.events} events in ${(run.windowMs / 1000).toFixed(2)} s = ${run.eventsPerSec.toFixed(0)} events/s ` +
    `(${run.deliveriesPerSec.toFixed(0)} deliveries/s); p50 ${run.latencyMs.p50.toFixed(1)} ms, p99 ${run.latencyMs.p99.toFixed(1)} ms; ` +
    `lost ${run.lost}, duplicated ${run.duplicated}${run.incomplete ? `, ${run.incomplete} INCOMPLETE` : ''}` +
    (cpu
      ? `; CPU s gateways ${cpu.gateways.toFixed(1)}, workers ${cpu.workers.toFixed(1)}, clients ${cpu.clients.toFixed(1)}`
      : '')
  );
}

import { setTimeout as sleep } from 'node:timers/promises';
import { createEventStore } from '@nodebatch/event-store';
import { createTestDatabase, uniqueName } from '@nodebatch/testkit';
import pg from 'pg';
import {
  readCpuSeconds,
  machineShares,
  readMachineCpu,
  readRssBytes,
  sumCpu,
  type BenchChild,
  type ChildSet,
} from './children.js';
import { selfSeconds } from './cpu-profile.js';
import { summarize, type RunResult } from './measure.js';
import type { BenchOptions, TransportName } from './options.js';
import { DatabaseLoad } from './pg-stats.js';
import type { SseClientPool } from './sse-clients.js';

export interface IdleResult {
  subscribers: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** Gateway RSS growth per 1,000 idle SSE subscribers, bytes. */
  rssPer1000Bytes: number;
  /** Database transactions/s with the gateways up and no subscriber, with one, then with the idle subscribers open. */
  idleTxPerSecNoSubscribers: number;
  idleTxPerSecOneSubscriber: number;
  /** With 1 + `subscribers` idle subscribers. */
  idleTxPerSecWithSubscribers: number;
  /** Gateway 1's CPU seconds per minute per 1,000 idle subscribers (their window less the one-subscriber window). */
  cpuPer1000PerMinute: number;
}

interface PhaseResult {
  transport: TransportName;
  runs: RunResult[];
  idle?: IdleResult;
}

export interface PhaseContext {
  options: BenchOptions;
  children: ChildSet;
  serverUrl: string;
  redisUrl: string;
  admin: pg.Client;
  cliMain: string;
  log: (line: string) => void;
  /** PROGRESS_HINT_KEY of every process of the run (BenchOptions.hintKey); null: none. */
  hintKey: string | null;
  /** The SSE client processes every run's subscribers live in. */
  clients: SseClientPool;
}

/**
 * One transport: G gateways and, per run, W workers on the simulated cluster,
 * in a fresh database with its own queue. Measures idle memory and database
 * load first, then each loaded run (paced and/or max).
 */
/** The environment of `nodebatch worker` / `gateway` in a bench database (no per-user caps, simulated cluster). */
export function nodebatchEnv(
  context: PhaseContext,
  transport: TransportName,
  databaseUrl: string,
  simNodes: number,
): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL: context.redisUrl,
    PROGRESS_NOTIFY_TYPE: transport,
    PROGRESS_POLL_INTERVAL: String(context.options.pollIntervalMs),
    AUTH_DISABLED: 'true',
    // Every subscriber and batch is the same anonymous user; the per-user caps would end the run early.
    LIMIT_STREAMS_PER_USER: '1000000',
    LIMIT_BATCHES_PER_MINUTE: '1000000',
    NODEBATCH_CLUSTER: 'simulated',
    NODEBATCH_SIM_NODES: String(simNodes),
    NODEBATCH_SIM_FAILURE_RATE: '0',
    WORKER_JOB_CONCURRENCY: String(Math.ceil(context.options.tasks / context.options.workers)),
    LOG_LEVEL: 'info',
    PROGRESS_COMBINED_HINTS: String(context.options.combinedHints),
    // The same key on workers, producers and gateways: inline events reach subscribers without a log read.
    ...(context.hintKey === null ? {} : { PROGRESS_HINT_KEY: context.hintKey }),
  };
}

/**
 * Starts `nodebatch <command>` from the built output (services/cli/dist),
 * never through a TypeScript loader: what is measured is what ships.
 * `profile` writes a V8 CPU profile beside the log (the full run's workers,
 * to tell the simulated cluster's share of their CPU).
 */
export function spawnNodebatch(
  context: PhaseContext,
  command: 'worker' | 'gateway',
  name: string,
  env: Record<string, string>,
  profile = false,
): BenchChild {
  const args = [
    ...context.children.profileArgs(name, context.options.cpuProfile || profile),
    context.cliMain,
    command,
  ];
  return context.children.spawn(name, args, env);
}

export async function runNodebatchPhase(
  context: PhaseContext,
  transport: TransportName,
  plan: { subscribers: number; kinds: Array<'max'>; idle: boolean; label: string },
): Promise<PhaseResult> {
  const { options, children, log } = context;
  const timeoutMs = options.timeoutS * 1000;
  const database = await createTestDatabase({ serverUrl: context.serverUrl, prefix: 'nb_bench' });
  const load = new DatabaseLoad(context.admin, database.name);
  const started: BenchChild[] = [];
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const queueName = uniqueName('nb_bench_queue');
  const maxNodes = options.tasks * options.nodes;
  const env = (extra: Record<string, string>): Record<string, string> => ({
    ...nodebatchEnv(context, transport, database.url, maxNodes),
    QUEUE_NAME: queueName,
    ...extra,
  });
  const result: PhaseResult = { transport, runs: [] };
  try {
    log(`${plan.label}: starting ${options.gateways} gateway(s) (database ${database.name})`);
    const gateways = Array.from({ length: options.gateways }, (_, i) =>
      spawnNodebatch(context, 'gateway', `${plan.label}-gateway-${i + 1}`, env({ PORT: '0' })),
    );
    started.push(...gateways);
    const urls = (await Promise.all(gateways.map((gateway) => gateway.waitForLine('port', timeoutMs)))).map(
      (line) => String(line.gatewayUrl ?? `http://127.0.0.1:${String(line.port)}`).replace(/\/$/, ''),
    );

    if (plan.idle && options.idleSubscribers > 0) {
      result.idle = await measureIdle(context, load, pool, urls[0]!, gateways[0]!, timeoutMs);
      log(
        `${plan.label}: idle: ${(result.idle.rssPer1000Bytes / 1024).toFixed(0)} KiB RSS per 1,000 subscribers; ` +
          `db tx/s ${result.idle.idleTxPerSecNoSubscribers.toFixed(1)} without subscribers, ${result.idle.idleTxPerSecOneSubscriber.toFixed(1)} with 1, ${result.idle.idleTxPerSecWithSubscribers.toFixed(1)} with ${options.idleSubscribers + 1} idle subscribers`,
      );
    }

    let nodeOffset = 0;
    for (const kind of plan.kinds) {
      const nodesPerTask = options.nodes;
      // The full run goes as fast as the workers go; pacing is the pipeline runs' part.
      const paceMs = 0;
      const taskIds: string[] = [];
      for (let t = 0; t < options.tasks; t++) {
        const nodes = Array.from(
          { length: nodesPerTask },
          (_, i) => `sim-node-${((nodeOffset + t * nodesPerTask + i) % maxNodes) + 1}`,
        );
        const response = await fetch(`${urls[t % urls.length]!}/api/v1/batches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ action: 'drain', nodes, concurrency: options.concurrency }),
        });
        if (response.status !== 202)
          throw new Error(`POST /api/v1/batches: HTTP ${response.status} ${await response.text()}`);
        taskIds.push(((await response.json()) as { taskId: string }).taskId);
      }
      nodeOffset += options.tasks * nodesPerTask;
      // Subscriber i watches task i % T through gateway i % G.
      const streamUrls = Array.from(
        { length: plan.subscribers },
        (_, i) => `${urls[i % urls.length]!}/api/v1/tasks/${taskIds[i % taskIds.length]!}/events`,
      );
      const group = await context.clients.open(streamUrls, { format: 'stored', timed: true }, timeoutMs);
      const gatewayCpuBefore = sumCpu(gateways);
      const clientCpuBefore = context.clients.cpuSeconds();
      const commitsBefore = await load.commits();
      load.startSampling();
      log(
        `${plan.label}/${kind}: ${plan.subscribers} subscribers live; starting ${options.workers} worker(s) (simulated latency ${paceMs} ms)`,
      );
      const workers = Array.from({ length: options.workers }, (_, i) =>
        spawnNodebatch(
          context,
          'worker',
          `${plan.label}-${kind}-worker-${i + 1}`,
          env({ NODEBATCH_SIM_LATENCY_MS: String(paceMs) }),
          true,
        ),
      );
      started.push(...workers);
      const workerCpuAtStart = await Promise.all(
        workers.map(async (worker) => {
          await worker.waitForLine('workerId', timeoutMs);
          return readCpuSeconds(worker.pid);
        }),
      );
      const machineBefore = readMachineCpu();
      const finished = await group.awaitCompletion(timeoutMs);
      const machineAfter = readMachineCpu();
      const cpuSeconds = {
        gateways: sumCpu(gateways) - gatewayCpuBefore,
        workers: sumCpu(workers) - workerCpuAtStart.reduce((sum, value) => sum + value, 0),
        clients: context.clients.cpuSeconds() - clientCpuBefore,
      };
      const report = await group.report(timeoutMs);
      // Counters reach pg_stat_database up to a second after the transactions.
      await sleep(1500);
      const commitsAfter = await load.commits();
      const peakConnections = load.stopSampling();
      await children.stop(workers);
      // The simulated cluster runs inside the workers: its CPU (from their profiles) on its own line.
      const simulatorTimes = workers
        .map((worker) => selfSeconds(children.profileDir(worker.name), isSimulatorCode))
        .filter((seconds): seconds is number => seconds !== undefined);
      const simulatorSeconds =
        simulatorTimes.length > 0 ? simulatorTimes.reduce((a, b) => a + b, 0) : undefined;

      // Timed events: per task, everything after TaskCreated up to the terminal event.
      const lastSeqByTask = new Map<string, number>();
      report.subscribers.forEach((subscriber, i) => {
        const task = taskIds[i % taskIds.length]!;
        lastSeqByTask.set(
          task,
          Math.max(lastSeqByTask.get(task) ?? 0, subscriber.terminalSeq || subscriber.lastSeq),
        );
      });
      const timedEvents = [...lastSeqByTask.values()].reduce((sum, last) => sum + last - 1, 0);
      const dbCommits = commitsAfter - commitsBefore;
      const summary = summarize(
        report,
        timedEvents,
        (i) => lastSeqByTask.get(taskIds[i % taskIds.length]!) ?? 0,
      );
      const run: RunResult = {
        transport,
        kind,
        workload: 'full',
        subscribers: plan.subscribers,
        gateways: options.gateways,
        tasks: options.tasks,
        paceMs,
        ...summary,
        dbCommits,
        // Over the active window (first event to last delivery): worker start-up is not load on the events' path.
        dbTxPerSec: dbCommits / (summary.windowMs / 1000),
        dbTxPer1000Events: (dbCommits / timedEvents) * 1000,
        peakConnections,
        ...machineShares(machineBefore, machineAfter),
        cpuSeconds: {
          ...cpuSeconds,
          ...(simulatorSeconds === undefined ? {} : { simulator: simulatorSeconds }),
        },
      };
      result.runs.push(run);
      log(
        `${plan.label}/${kind}: ${run.events} events in ${(run.windowMs / 1000).toFixed(2)} s = ${run.eventsPerSec.toFixed(0)} events/s ` +
          `(${run.deliveriesPerSec.toFixed(0)} deliveries/s); p50 ${run.latencyMs.p50.toFixed(1)} ms, p99 ${run.latencyMs.p99.toFixed(1)} ms, ` +
          `max ${run.latencyMs.max.toFixed(1)} ms; lost ${run.lost}, duplicated ${run.duplicated}, reconnects ${run.reconnects}` +
          `${finished ? '' : `, ${run.incomplete} subscribers INCOMPLETE after ${options.timeoutS} s`}; db ${run.dbTxPerSec?.toFixed(0)} tx/s, peak ${peakConnections} connections; ` +
          `CPU s gateways ${cpuSeconds.gateways.toFixed(1)}, workers ${cpuSeconds.workers.toFixed(1)}, clients ${cpuSeconds.clients.toFixed(1)}`,
      );
    }
    return result;
  } finally {
    await children.stop(started);
    await pool.end().catch(() => undefined);
    await database.drop().catch((err: unknown) => log(`could not drop ${database.name}: ${String(err)}`));
  }
}

/**
 * Idle cost of subscribers: database transactions/s of the gateways with no
 * subscriber and with N idle SSE streams open on a task that never
 * progresses, and the first gateway's RSS before and after opening them.
 */
export async function measureIdle(
  context: PhaseContext,
  load: DatabaseLoad,
  pool: pg.Pool,
  url: string,
  gateway: BenchChild,
  timeoutMs: number,
): Promise<IdleResult> {
  const { options } = context;
  const windowMs = options.idleWindowS * 1000;
  // Time for connections and their first reads to settle, and for PostgreSQL
  // to flush its counters (up to a second late), before a window starts.
  const settleMs = 1000;
  // A task with no job behind it: it exists in the log and never progresses.
  const store = createEventStore({ pool });
  const taskId = uniqueName('idle-task');
  await store.append(taskId, [
    { type: 'TaskCreated', data: { userId: 'demo', action: 'cordon', nodes: ['sim-node-1'], params: {} } },
  ]);
  const txRate = async (): Promise<number> => {
    const before = await load.commits();
    const started = Date.now();
    await sleep(windowMs);
    return ((await load.commits()) - before) / ((Date.now() - started) / 1000);
  };
  await sleep(settleMs);
  const idleTxPerSecNoSubscribers = await txRate();
  const streamUrl = `${url}/api/v1/tasks/${taskId}/events`;
  const first = await context.clients.open([streamUrl], { format: 'stored', timed: false }, timeoutMs);
  await sleep(settleMs);
  const cpuBeforeOne = readCpuSeconds(gateway.pid);
  const oneStarted = Date.now();
  const idleTxPerSecOneSubscriber = await txRate();
  const cpuPerMinuteOne = ((readCpuSeconds(gateway.pid) - cpuBeforeOne) * 60_000) / (Date.now() - oneStarted);
  const rssBeforeBytes = readRssBytes(gateway.pid);
  const rest = await context.clients.open(
    Array.from({ length: options.idleSubscribers }, () => streamUrl),
    { format: 'stored', timed: false },
    timeoutMs,
  );
  await sleep(settleMs);
  const rssAfterBytes = readRssBytes(gateway.pid);
  const cpuBeforeWindow = readCpuSeconds(gateway.pid);
  const windowStarted = Date.now();
  const idleTxPerSecWithSubscribers = await txRate();
  const cpuPerMinuteWith =
    ((readCpuSeconds(gateway.pid) - cpuBeforeWindow) * 60_000) / (Date.now() - windowStarted);
  first.close();
  rest.close();
  return {
    subscribers: options.idleSubscribers,
    rssBeforeBytes,
    rssAfterBytes,
    rssPer1000Bytes: ((rssAfterBytes - rssBeforeBytes) / options.idleSubscribers) * 1000,
    idleTxPerSecNoSubscribers,
    idleTxPerSecOneSubscriber,
    idleTxPerSecWithSubscribers,
    cpuPer1000PerMinute: (Math.max(0, cpuPerMinuteWith - cpuPerMinuteOne) / options.idleSubscribers) * 1000,
  };
}

/** Code of the simulated cluster (packages/kube: in simulated mode nothing else of it runs). */
function isSimulatorCode(url: string): boolean {
  return url.includes('/packages/kube/');
}

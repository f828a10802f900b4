/**
 * One whole bench run as a function (main.ts is its command line; the smoke
 * test calls it with a tiny configuration): raw floor, per transport the
 * pipeline runs (identical job body to BullMQ's), idle cost and scale table,
 * the BullMQ baseline on the same plans, then the full runs of nodebatch's
 * worker on the simulated cluster.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, sharedDatabaseUrl, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ensureBuilt } from './build-check.js';
import { runBullmqBaseline } from './bullmq/bullmq-baseline.js';
import type { ChildSet } from './children.js';
import { runNodebatchPipeline, type NodebatchPipelineStep } from './nodebatch-pipeline.js';
import { runNodebatchPhase, type PhaseContext } from './nodebatch-phase.js';
import { pacedPauseMs, type BenchOptions } from './options.js';
import type { PipelinePlan } from './pipeline-phase.js';
import { pgCommitNotifyRoundTrip, pgNotifyRoundTrip, redisPublishRoundTrip } from './raw-floor.js';
import type { BenchResults } from './report.js';
import { SseClientPool } from './sse-clients.js';

/** Repository root: where the workspace is built and services/cli/dist/main.js lives. */
export const ROOT = join(import.meta.dirname, '../..');
const CLI_MAIN = join(ROOT, 'services/cli/dist/main.js');

async function versions(admin: pg.Client, redisUrl: string): Promise<BenchResults['versions']> {
  const postgres = (await admin.query<{ version: string }>('SELECT version()')).rows[0]?.version ?? 'unknown';
  const redis = new Redis(redisUrl, { lazyConnect: true });
  await redis.connect();
  const info = await redis.info('server');
  redis.disconnect();
  const bullmqPackage = join(ROOT, 'scripts/node_modules/bullmq/package.json');
  return {
    node: process.version,
    postgres: postgres.split(' on ')[0] ?? postgres,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    bullmq: (JSON.parse(readFileSync(bullmqPackage, 'utf8')) as { version: string }).version,
  };
}

/** The pipeline paced and max plans, shared by every transport and BullMQ. */
function pipelinePlans(options: BenchOptions): { paced: PipelinePlan; max: PipelinePlan } {
  const base = { subscribers: options.subscribers, gateways: options.gateways, tasks: options.tasks };
  return {
    paced: { ...base, kind: 'paced', eventsPerTask: options.pacedEvents, paceMs: pacedPauseMs(options) },
    max: { ...base, kind: 'max', eventsPerTask: options.events, paceMs: 0 },
  };
}

/**
 * The scale table's plans: each subscriber count at the default gateways,
 * then each gateway count at `scaleGatewaySubscribers` (1,000). Every run
 * appends the same events, so deliveries grow with the subscribers and the
 * gateway CPU per million deliveries shows whether the cost of a delivery
 * grows with the fan-out (it should not: linear in deliveries).
 */
function scalePlans(options: BenchOptions): PipelinePlan[] {
  const plan = (subscribers: number, gateways: number): PipelinePlan => ({
    kind: 'max',
    subscribers,
    gateways,
    tasks: options.tasks,
    eventsPerTask: options.scaleEvents,
    paceMs: 0,
  });
  const plans = options.scaleSubscribers.map((subscribers) => plan(subscribers, options.gateways));
  const fanOut = options.scaleGatewaySubscribers;
  for (const gateways of options.scaleGateways) {
    if (!plans.some((p) => p.subscribers === fanOut && p.gateways === gateways))
      plans.push(plan(fanOut, gateways));
  }
  return plans;
}

export async function runBench(
  options: BenchOptions,
  children: ChildSet,
  log: (line: string) => void,
  /** false: the caller has just built the workspace (the test command does before any test). */
  buildCheck = true,
): Promise<BenchResults> {
  const startedAt = new Date();
  if (buildCheck) ensureBuilt(ROOT, options.build, log);
  const serverUrl = sharedDatabaseUrl();
  const redisUrl = sharedRedisUrl();
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect().catch((err: unknown) => {
    throw new Error(
      `cannot connect to PostgreSQL at ${new URL(serverUrl).host} (NODEBATCH_TEST_DATABASE_URL); start the test servers first`,
      { cause: err },
    );
  });
  const cpuList = cpus();
  const results: BenchResults = {
    startedAt: startedAt.toISOString(),
    durationS: 0,
    machine: {
      os: `${platform()} ${release()}`,
      cpus: cpuList[0]?.model.trim() ?? 'unknown',
      cores: cpuList.length,
      memoryGiB: totalmem() / 2 ** 30,
      loadAverage: loadavg(),
      loadAverageAtEnd: [],
    },
    versions: await versions(admin, redisUrl),
    options,
    rawFloor: {},
    runs: [],
    scale: [],
    stages: [],
    warmUps: [],
    idle: [],
    errors: [],
  };
  const record = (what: string, err: unknown): void => {
    const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
    results.errors.push(message);
    log(`FAILED ${message}`);
  };

  try {
    log(
      `raw floor: ${options.rawSamples} pg_notify, committed INSERT + pg_notify and PUBLISH round trips each`,
    );
    const rawDatabase = await createTestDatabase({ serverUrl, prefix: 'nb_bench_raw' });
    try {
      results.rawFloor.pgNotify = await pgNotifyRoundTrip(
        rawDatabase.url,
        options.rawSamples,
        uniqueName('nb_bench_raw'),
      );
      results.rawFloor.pgCommitNotify = await pgCommitNotifyRoundTrip(
        rawDatabase.url,
        options.rawSamples,
        uniqueName('nb_bench_raw'),
      );
    } catch (err) {
      record('pg_notify round trip', err);
    } finally {
      await rawDatabase.drop();
    }
    try {
      results.rawFloor.redisPublish = await redisPublishRoundTrip(
        redisUrl,
        options.rawSamples,
        uniqueName('nb_bench_raw'),
      );
    } catch (err) {
      record('Redis PUBLISH round trip', err);
    }

    // After the raw floor, which they would otherwise share the cores with.
    log(`starting ${options.clientProcesses} SSE client process(es)`);
    const clients = await SseClientPool.start(
      children,
      options.clientProcesses,
      options.timeoutS * 1000,
      options.cpuProfile,
    );
    const context: PhaseContext = {
      options,
      children,
      serverUrl,
      redisUrl,
      admin,
      cliMain: CLI_MAIN,
      log,
      hintKey: options.hintKey ? randomBytes(32).toString('base64') : null,
      clients,
    };
    const plans = pipelinePlans(options);
    // BullMQ first: its max rate is the load of the nodebatch runs that compare latency with it.
    let bullmqMaxRate: number | undefined;
    if (options.bullmq) {
      try {
        const bullmq = await runBullmqBaseline(
          options,
          children,
          redisUrl,
          { warmUp: plans.max, measured: [plans.paced, plans.max] },
          clients,
          log,
        );
        results.runs.push(...bullmq.runs);
        bullmqMaxRate = bullmq.runs.find((run) => run.kind === 'max')?.eventsPerSec;
        results.warmUps.push(bullmq.warmUp);
      } catch (err) {
        record('BullMQ baseline', err);
      }
    }

    for (const transport of options.transports) {
      const steps: NodebatchPipelineStep[] = [
        { plan: plans.max, table: 'warm-up' },
        { plan: plans.paced, stages: 'all', table: 'pipeline' },
        { plan: plans.max, stages: 'own', table: 'pipeline' },
      ];
      // At the load BullMQ's max run reached, so that their latencies compare like for like.
      if (transport !== 'polling' && bullmqMaxRate !== undefined && bullmqMaxRate > 0)
        steps.push({
          plan: {
            ...plans.max,
            kind: 'paced',
            paceMs: (options.tasks * 1000) / bullmqMaxRate,
            atRateOf: 'bullmq-max',
          },
          table: 'pipeline',
        });
      // The commit floor: one awaited transaction per event, as BullMQ awaits each updateProgress.
      if (transport !== 'polling')
        steps.push({
          plan: { ...plans.max, append: 'each', eventsPerTask: Math.max(1, Math.ceil(options.events / 4)) },
          table: 'pipeline',
        });
      // Same workload, more subscribers: polling's database load should not change.
      if (transport === 'polling' && options.pollingSubscribers > 0)
        steps.push({
          plan: { ...plans.paced, subscribers: options.pollingSubscribers },
          table: 'pipeline',
        });
      if (transport === 'postgres')
        for (const plan of scalePlans(options)) steps.push({ plan, table: 'scale' });
      try {
        const phase = await runNodebatchPipeline(
          context,
          transport,
          steps,
          options.idleTransports.includes(transport),
        );
        results.runs.push(...phase.runs);
        results.scale.push(...phase.scale);
        results.stages.push(...phase.stages);
        results.warmUps.push(...phase.warmUps);
        if (phase.idle) results.idle.push({ transport, ...phase.idle });
      } catch (err) {
        record(`${transport} pipeline`, err);
      }
    }

    for (const transport of options.fullTransports) {
      try {
        const phase = await runNodebatchPhase(context, transport, {
          subscribers: options.subscribers,
          kinds: ['max'],
          idle: false,
          label: `${transport}-full`,
        });
        results.runs.push(...phase.runs);
      } catch (err) {
        record(`${transport} full run`, err);
      }
    }
  } finally {
    await children.stop();
    await admin.end().catch(() => undefined);
  }
  results.durationS = (Date.now() - startedAt.getTime()) / 1000;
  results.machine.loadAverageAtEnd = loadavg();
  return results;
}

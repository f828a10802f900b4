/**
 * `pnpm bench`: end-to-end latency, throughput and database load of each
 * progress transport (postgres, redis, polling) through real worker and
 * gateway processes, against the raw pg_notify / PUBLISH round trip and
 * BullMQ's own progress events. `pnpm bench --help` lists the parameters.
 *
 * Uses NODEBATCH_TEST_DATABASE_URL's server (or the local one) with a fresh
 * database per transport, and NODEBATCH_TEST_REDIS_URL (or the local Redis)
 * with unique queue names. Writes <out>/RESULTS.md and <out>/results.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, sharedDatabaseUrl, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import { Redis } from 'ioredis';
import pg from 'pg';
import { runBullmqBaseline, type BullmqRunPlan } from './bullmq/bullmq-baseline.js';
import { ChildSet } from './children.js';
import type { RunResult } from './measure.js';
import { pacedLatencyMs, runNodebatchPhase, type PhaseContext } from './nodebatch-phase.js';
import { BenchUsageError, parseBenchOptions } from './options.js';
import { pgNotifyRoundTrip, redisPublishRoundTrip } from './raw-floor.js';
import { renderMarkdown, renderTable, renderTargets, type BenchResults } from './report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI_MAIN = join(ROOT, 'services/cli/src/main.ts');

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

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

async function main(): Promise<void> {
  const options = parseBenchOptions(process.argv.slice(2).filter((arg) => arg !== '--'));
  const startedAt = new Date();
  const logDir = mkdtempSync(join(tmpdir(), 'nodebatch-bench-'));
  const children = new ChildSet(logDir);
  process.on('exit', () => children.killAllNow());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping every child process`);
      children.killAllNow();
      process.exit(130);
    });
  }
  log(`child process logs: ${logDir}`);

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
    pacedSimLatencyMs: options.rate > 0 ? pacedLatencyMs(options) : 0,
    rawFloor: {},
    runs: [],
    idle: [],
    errors: [],
  };
  const record = (what: string, err: unknown): void => {
    const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
    results.errors.push(message);
    log(`FAILED ${message}`);
  };

  try {
    log(`raw floor: ${options.rawSamples} pg_notify and ${options.rawSamples} PUBLISH round trips`);
    const rawDatabase = await createTestDatabase({ serverUrl, prefix: 'nb_bench_raw' });
    try {
      results.rawFloor.pgNotify = await pgNotifyRoundTrip(
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

    const context: PhaseContext = { options, children, serverUrl, redisUrl, admin, cliMain: CLI_MAIN, log };
    const kinds: Array<'paced' | 'max'> = options.rate > 0 ? ['paced', 'max'] : ['max'];
    for (const transport of options.transports) {
      try {
        const phase = await runNodebatchPhase(context, transport, {
          subscribers: options.subscribers,
          kinds,
          idle: true,
          label: transport,
        });
        results.runs.push(...phase.runs);
        if (phase.idle) results.idle.push({ transport, ...phase.idle });
      } catch (err) {
        record(`${transport} transport`, err);
      }
    }
    if (options.transports.includes('polling') && options.pollingSubscribers > 0) {
      try {
        // Same workload, more subscribers: the database load should not change.
        const phase = await runNodebatchPhase(context, 'polling', {
          subscribers: options.pollingSubscribers,
          kinds: [kinds[0]!],
          idle: false,
          label: `polling-${options.pollingSubscribers}`,
        });
        results.runs.push(...phase.runs);
      } catch (err) {
        record(`polling transport with ${options.pollingSubscribers} subscribers`, err);
      }
    }

    if (options.bullmq) {
      // Same events per job as the nodebatch runs (their events per task, less TaskCreated and the terminal event).
      const reference = (kind: 'paced' | 'max'): RunResult | undefined =>
        results.runs.find((run) => run.kind === kind && run.transport !== 'polling') ??
        results.runs.find((run) => run.kind === kind);
      const plans: BullmqRunPlan[] = [];
      for (const kind of kinds) {
        const run = reference(kind);
        const eventsPerJob = run
          ? Math.max(1, Math.round(run.events / run.tasks) - 1)
          : (kind === 'max' ? options.nodes : options.pacedNodes) * 6;
        const paceMs = kind === 'max' ? 0 : Math.max(1, Math.round((options.tasks * 1000) / options.rate));
        plans.push({ kind, eventsPerJob, paceMs });
      }
      try {
        results.runs.push(...(await runBullmqBaseline(options, children, redisUrl, plans, log)));
      } catch (err) {
        record('BullMQ baseline', err);
      }
    }
  } finally {
    await children.stop();
    await admin.end().catch(() => undefined);
  }

  results.durationS = (Date.now() - startedAt.getTime()) / 1000;
  results.machine.loadAverageAtEnd = loadavg();
  const outDir = resolve(ROOT, options.out);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(results));
  process.stdout.write(`\n${renderTable(results)}\n\n${renderTargets(results).join('\n')}\n\n`);
  log(
    `wrote ${join(outDir, 'RESULTS.md')} and results.json in ${results.durationS.toFixed(0)} s; child logs in ${logDir}`,
  );
  if (results.errors.length > 0) {
    log(`${results.errors.length} part(s) failed; see "Errors during the run" in RESULTS.md`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  if (err instanceof BenchUsageError) process.stderr.write(`${err.message}\n`);
  else
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n${err instanceof Error && err.cause ? `cause: ${String(err.cause)}\n` : ''}`,
    );
  process.exitCode = 1;
});

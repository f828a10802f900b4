/**
 * `pnpm bench`: throughput, latency by stage, scale and idle cost of each
 * progress transport (postgres, redis, polling) through real gateway
 * processes (built output), against the raw pg_notify / PUBLISH round trip
 * and BullMQ running the identical job body. `pnpm bench --help` lists the
 * parameters; `--quick` gives the same tables in under a minute.
 *
 * Uses NODEBATCH_TEST_DATABASE_URL's server (or the local one) with a fresh
 * database per phase, and NODEBATCH_TEST_REDIS_URL (or the local Redis) with
 * unique queue names. Writes <out>/RESULTS.md, results.json and the latency charts.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT, runBench } from './bench-run.js';
import { StaleBuildError } from './build-check.js';
import { ChildSet } from './children.js';
import { latencyChartSvg } from './latency-chart.js';
import { BenchUsageError, parseBenchOptions } from './options.js';
import { renderMarkdown, renderSummary } from './report.js';

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

async function main(): Promise<void> {
  const options = parseBenchOptions(process.argv.slice(2).filter((arg) => arg !== '--'));
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
  const results = await runBench(options, children, log);
  const outDir = resolve(ROOT, options.out);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  for (const kind of ['paced', 'max'] as const)
    writeFileSync(join(outDir, `latency-${kind}.svg`), latencyChartSvg(results, kind));
  writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(results));
  process.stdout.write(`\n${renderSummary(results)}\n\n`);
  log(
    `wrote ${join(outDir, 'RESULTS.md')}, results.json and the charts in ${results.durationS.toFixed(0)} s; child logs in ${logDir}`,
  );
  if (results.errors.length > 0) {
    log(`${results.errors.length} part(s) failed; see "Errors during the run" in RESULTS.md`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  if (err instanceof BenchUsageError || err instanceof StaleBuildError)
    process.stderr.write(`${err.message}\n`);
  else
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n${err instanceof Error && err.cause ? `cause: ${String(err.cause)}\n` : ''}`,
    );
  process.exitCode = 1;
});

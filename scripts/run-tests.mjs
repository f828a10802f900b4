#!/usr/bin/env node
// The test command: servers, lint, format, typecheck, build, then every
// package's Vitest suite through turbo. It ends with one plain line
// `N passed, N failed, N skipped` summed from Vitest's JSON reports, because
// CI reads that line and not Vitest's own summary.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAllowedSkips, summariseReports } from './test-reports.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const workspaceDirs = ['packages', 'services', '.']
  .flatMap((top) =>
    top === '.'
      ? ['test', 'scripts']
      : existsSync(join(root, top))
        ? readdirSync(join(root, top)).map((name) => join(top, name))
        : [],
  )
  .filter((dir) => existsSync(join(root, dir, 'package.json')));

function run(command, args, env = process.env) {
  console.log(`\n[test] $ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  return result.status ?? 1;
}

function ensureServers() {
  const result = spawnSync(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'scripts/ensure-services.ts', '--json'],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' },
  );
  if (result.status !== 0) return undefined;
  return JSON.parse(result.stdout.trim().split('\n').at(-1));
}

// Read first: a malformed allowlist stops the run before anything else does.
const allowedSkips = readAllowedSkips(join(root, 'test-skips.json'));

// Says which Node.js ran the suites, at the start and again next to the summary.
const pinnedNode = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).nodeRuntime?.version;
const nodeLine = `[test] node ${process.version} (pinned ${pinnedNode}) at ${process.execPath}`;
console.log(nodeLine);

for (const dir of workspaceDirs) rmSync(join(root, dir, '.vitest'), { recursive: true, force: true });

const servers = ensureServers();
if (!servers) {
  console.error('[test] PostgreSQL and Redis are required for the tests; see the message above.');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const env = {
  ...process.env,
  NODEBATCH_TEST_DATABASE_URL: servers.databaseUrl,
  NODEBATCH_TEST_REDIS_URL: servers.redisUrl,
};

const checks = [
  run('turbo', ['run', 'build', 'typecheck', 'lint', '--output-logs=errors-only'], env),
  run('prettier', ['--check', '--log-level=warn', '.'], env),
  // Exports that nothing imports (outside a package's public entry points) are dead code.
  run('knip', ['--include', 'exports,types', '--no-progress'], env),
];
const tests = run('turbo', ['run', 'test', '--concurrency=2', '--continue', '--output-logs=full'], env);

const { passed, failed, skipped } = summariseReports({
  root,
  dirs: workspaceDirs,
  allowedSkips,
  onCi: Boolean(process.env.CI) && process.env.CI !== 'false',
});
const checksFailed = checks.filter((status) => status !== 0).length;
if (checksFailed > 0)
  console.error(
    `[test] ${checksFailed} of build/typecheck/lint, format and dead-export checks failed; each counts as a failure below`,
  );
console.log(nodeLine);
// A failed check is a failure of the command as much as a failed test, so the
// line CI reads never says "0 failed" for a run that failed.
console.log(`${passed} passed, ${failed + checksFailed} failed, ${skipped} skipped`);
process.exit(failed > 0 || tests !== 0 || checksFailed > 0 ? 1 : 0);

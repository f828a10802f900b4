#!/usr/bin/env node
// Entry point of the README's two commands. It needs only Node.js and npm:
// pnpm is installed through npm into .tools/ at the version pinned by
// `packageManager` (corepack's own download is not assumed to work).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pnpmVersion = String(manifest.packageManager).replace(/^pnpm@/, '');
const toolsDir = join(root, '.tools');
const pnpmEntry = join(toolsDir, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function installedPnpmVersion() {
  const pkg = join(toolsDir, 'node_modules', 'pnpm', 'package.json');
  return existsSync(pkg) ? JSON.parse(readFileSync(pkg, 'utf8')).version : undefined;
}

export function ensurePnpm() {
  if (installedPnpmVersion() === pnpmVersion) return;
  console.log(`[bootstrap] installing pnpm ${pnpmVersion} into .tools/ with npm`);
  const status = run(
    'npm',
    [
      'install',
      '--prefix',
      toolsDir,
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      `pnpm@${pnpmVersion}`,
    ],
    { shell: process.platform === 'win32' },
  );
  if (status !== 0) {
    console.error(`[bootstrap] npm could not install pnpm@${pnpmVersion}; check access to the npm registry`);
    process.exit(status);
  }
}

export function pnpm(args, options = {}) {
  // Children (turbo, package scripts) find this pnpm first on PATH.
  const binDir = join(toolsDir, 'node_modules', '.bin');
  const env = { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ''}`, ...(options.env ?? {}) };
  return run(process.execPath, [pnpmEntry, ...args], { ...options, env });
}

function install() {
  const frozen = existsSync(join(root, 'pnpm-lock.yaml')) ? ['--frozen-lockfile'] : [];
  const status = pnpm(['install', '--reporter=append-only', ...frozen], { env: { CI: 'true' } });
  if (status !== 0) process.exit(status);
}

const [command = 'test', ...rest] = process.argv.slice(2);
ensurePnpm();
install();
if (command === 'install') process.exit(0);
if (command === 'test') {
  process.exit(pnpm(['exec', 'node', 'scripts/run-tests.mjs', ...rest]));
}
if (command === 'demo') {
  const built = pnpm(['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
  if (built !== 0) process.exit(built);
  process.exit(pnpm(['nodebatch', 'demo', ...rest]));
}
if (command === 'pnpm') {
  process.exit(pnpm(rest));
}
console.error(`[bootstrap] unknown command "${command}" (expected test, demo, install or pnpm)`);
process.exit(2);

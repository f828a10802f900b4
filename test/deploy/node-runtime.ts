import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..');

interface PackageManifest {
  name: string;
  private?: boolean;
  engines?: { node?: string };
  devDependencies?: Record<string, string>;
  nodeRuntime?: { version: string; oldestSupported?: string; integrity?: Record<string, string> };
}

export function readManifest(dir: string): PackageManifest {
  return JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8')) as PackageManifest;
}

/** The workspace packages other services install: every package under packages/ and services/ not marked private. */
export function publishedPackages(): { dir: string; manifest: PackageManifest }[] {
  return ['packages', 'services']
    .flatMap((top) => readdirSync(join(repoRoot, top)).map((name) => join(top, name)))
    .filter((dir) => existsSync(join(repoRoot, dir, 'package.json')))
    .map((dir) => ({ dir, manifest: readManifest(dir) }))
    .filter(({ manifest }) => manifest.private !== true);
}

export interface InstalledNode {
  version: string;
  execPath: string;
}

/**
 * The Node.js releases scripts/bootstrap.mjs installed into .tools/: the pinned
 * one everything runs on, and the oldest one the published engines range names.
 */
export function installedNodes(): { pinned: InstalledNode; oldest: InstalledNode } {
  const file = join(repoRoot, '.tools', 'runtime.json');
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run \`node scripts/bootstrap.mjs install\` first`);
  }
  const info = JSON.parse(readFileSync(file, 'utf8')) as { pinned?: InstalledNode; oldest?: InstalledNode };
  if (!info.pinned || !info.oldest) {
    throw new Error(`${file} names no pinned and oldest Node.js: run \`node scripts/bootstrap.mjs install\``);
  }
  return { pinned: info.pinned, oldest: info.oldest };
}

/**
 * The npm settings of this machine for an npm that runs on the pinned Node.js.
 * npm looks for its global npmrc next to the Node.js that runs it, so under
 * `.tools/` it would miss the machine's (a registry, a proxy's CA file) and a
 * user's install would not be reproduced. The machine's npm, run with the
 * machine's PATH (without `.tools/`), says where that file is.
 */
export function machineNpmConfig(): Record<string, string> {
  const tools = join(repoRoot, '.tools');
  const machinePath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '' && !dir.startsWith(tools))
    .join(delimiter);
  const result = spawnSync('npm', ['config', 'get', 'globalconfig'], {
    env: { ...process.env, PATH: machinePath },
    encoding: 'utf8',
  });
  const file = result.status === 0 ? result.stdout.trim() : '';
  return file && existsSync(file) ? { npm_config_globalconfig: file } : {};
}

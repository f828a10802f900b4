import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The measured processes would run old code, or none: the bench refuses to measure that. */
export class StaleBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StaleBuildError';
  }
}

/** Newest modification time of the files under `dir` (0 when it does not exist). */
function newestMtime(dir: string, skip: (name: string) => boolean = () => false): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (skip(entry.name)) continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path, skip) : statSync(path).mtimeMs);
  }
  return newest;
}

const isTest = (name: string): boolean => name.endsWith('.test.ts') || name === 'testing';

/**
 * Packages and services whose `dist` is older than their `src` (tests
 * aside), or that have no `dist` at all: what the measured processes would
 * run stale.
 */
function staleBuilds(root: string): string[] {
  const stale: string[] = [];
  for (const group of ['packages', 'services']) {
    for (const name of readdirSync(join(root, group))) {
      const dir = join(root, group, name);
      if (!existsSync(join(dir, 'src'))) continue;
      const sourceTime = newestMtime(join(dir, 'src'), isTest);
      const builtTime = newestMtime(join(dir, 'dist'));
      if (builtTime === 0) stale.push(`${group}/${name} (no dist)`);
      else if (sourceTime > builtTime) stale.push(`${group}/${name} (src newer than dist)`);
    }
  }
  return stale;
}

/**
 * Builds the workspace (turbo; cached packages cost nothing), or, with
 * `build` false, checks that every dist is at least as new as its sources
 * and refuses to measure otherwise. The worker and gateway
 * processes the bench measures run `node services/cli/dist/main.js`, never a
 * TypeScript loader, so a stale dist would measure code that is not there.
 */
export function ensureBuilt(root: string, build: boolean, log: (line: string) => void): void {
  if (build) {
    log('building the workspace (pnpm turbo run build) so that the measured processes run dist');
    const result = spawnSync(
      'pnpm',
      ['-s', 'turbo', 'run', 'build', '--concurrency=2', '--output-logs=errors-only'],
      {
        cwd: root,
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    if (result.status !== 0)
      throw new StaleBuildError(
        `the build failed (exit ${String(result.status ?? result.signal)}): the bench measures built output only; fix the build first`,
      );
    // turbo hashes the sources: a cache hit leaves a current dist as it was, with its older times.
    return;
  }
  const stale = staleBuilds(root);
  if (stale.length > 0)
    throw new StaleBuildError(
      `the built output is missing or older than its sources: ${stale.join(', ')}. ` +
        'Run `pnpm build` (or `pnpm bench` without --no-build) first: the bench measures dist, never sources through a loader.',
    );
}

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  installedNodes,
  machineNpmConfig,
  publishedPackages,
  readManifest,
  repoRoot,
  type InstalledNode,
} from './node-runtime.js';

const INSTALL_TIMEOUT_MS = 900_000;
const pnpmEntry = join(repoRoot, '.tools', 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
const nodes = installedNodes();
const packages = publishedPackages();
const npmConfig = machineNpmConfig();
const workDir = mkdtempSync(join(tmpdir(), 'nodebatch-packed-'));

/**
 * The environment of an outside npm project: the given Node.js first on PATH
 * (npm's own `#!/usr/bin/env node` then runs on it) and none of the npm_*
 * variables pnpm sets for the scripts it runs, which would leak this
 * workspace's settings into that project.
 */
function outsideEnv(node: InstalledNode, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) || /^npm_config_(registry|cache)$/i.test(key)) env[key] = value;
  }
  env.PATH = [dirname(node.execPath), process.env.PATH ?? ''].join(delimiter);
  return { ...env, ...npmConfig, ...extra };
}

function runIn(cwd: string, command: string, args: string[], env: NodeJS.ProcessEnv) {
  const result = spawnSync(command, args, {
    cwd,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: INSTALL_TIMEOUT_MS,
  });
  if (result.error) throw new Error(`${command} ${args.join(' ')} failed to run: ${result.error.message}`);
  const stdout = result.stdout ?? '';
  return { status: result.status, stdout, output: `${stdout}${result.stderr ?? ''}` };
}

/** `pnpm pack` of every published package (workspace:* becomes the real version), built by turbo's ^build. */
function packAll(): string[] {
  const dest = join(workDir, 'tarballs');
  mkdirSync(dest, { recursive: true });
  for (const { dir } of packages) {
    const packed = runIn(
      join(repoRoot, dir),
      process.execPath,
      [pnpmEntry, 'pack', '--pack-destination', dest],
      {
        ...process.env,
      },
    );
    if (packed.status !== 0) throw new Error(`pnpm pack in ${dir} failed:\n${packed.output}`);
  }
  return readdirSync(dest).map((file) => join(dest, file));
}

let tarballs: string[] = [];
let database: TestDatabase;

beforeAll(async () => {
  tarballs = packAll();
  database = await createTestDatabase({ prefix: 'nb_packed' });
}, INSTALL_TIMEOUT_MS);

afterAll(async () => {
  await database?.drop();
  rmSync(workDir, { recursive: true, force: true });
}, INSTALL_TIMEOUT_MS);

/** Imports every package by name, then runs the core over PostgreSQL: migrate, append, read back, fold. */
const SMOKE = `
import pg from 'pg';
const names = JSON.parse(process.env.PACKAGES);
for (const name of names) {
  const loaded = await import(name);
  if (Object.keys(loaded).length === 0) throw new Error(name + ' exports nothing');
}
const { createEventStore, runMigrations } = await import('@nodebatch/event-store');
const { foldTask } = await import('@nodebatch/progress');
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
try {
  await runMigrations(pool);
  const store = createEventStore({ pool });
  const taskId = 'packed-' + process.versions.node;
  await store.append(taskId, [
    { type: 'TaskCreated', data: { userId: 'alice', action: 'cordon', nodes: ['node-a'], params: {} } },
    { type: 'NodeProgress', data: { node: 'node-a', done: 1, total: 1 } },
    { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } },
  ]);
  const events = await store.readTask(taskId);
  const state = foldTask(taskId, events);
  console.log(JSON.stringify({ node: process.version, imported: names.length, seqs: events.map((e) => e.seq), outcome: state.outcome }));
} finally {
  await pool.end();
}
`;

describe('the suite itself', () => {
  it('runs on the Node.js release pinned in package.json', () => {
    expect(process.version).toBe(`v${readManifest('.').nodeRuntime?.version}`);
    expect(nodes.pinned.version).toBe(readManifest('.').nodeRuntime?.version);
  });
});

describe.each([
  ['the pinned', nodes.pinned],
  ['the oldest supported', nodes.oldest],
])('the packed packages on %s Node.js', (_label, node) => {
  const project = join(workDir, `outside-${node.version}`);
  let install: ReturnType<typeof runIn>;

  beforeAll(() => {
    mkdirSync(project, { recursive: true });
    writeFileSync(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'outside-project', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
    );
    install = runIn(project, 'npm', ['install', '--no-audit', '--no-fund', ...tarballs], outsideEnv(node));
  }, INSTALL_TIMEOUT_MS);

  it(`install into an outside npm project without engine warnings (npm on Node.js ${node.version})`, () => {
    const version = runIn(project, 'npm', ['version', '--json'], outsideEnv(node));
    expect((JSON.parse(version.stdout) as { node: string }).node).toBe(node.version);
    expect(tarballs.length).toBe(packages.length);
    expect(install.status, install.output).toBe(0);
    expect(install.output).not.toMatch(/EBADENGINE|Unsupported engine/);
  });

  it(`load every package and run the core there (Node.js ${node.version})`, () => {
    expect(install.status, install.output).toBe(0);
    writeFileSync(join(project, 'smoke.mjs'), SMOKE);
    const smoke = runIn(
      project,
      node.execPath,
      ['smoke.mjs'],
      outsideEnv(node, {
        DATABASE_URL: database.url,
        PACKAGES: JSON.stringify(packages.map(({ manifest }) => manifest.name)),
      }),
    );
    expect(smoke.status, smoke.output).toBe(0);
    // stdout only: Node.js 22 prints a deprecation warning (DEP0040, punycode) for a dependency on stderr.
    expect(JSON.parse(smoke.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      node: `v${node.version}`,
      imported: packages.length,
      seqs: [1, 2, 3],
      outcome: { type: 'TaskCompleted', seq: 3 },
    });
  });
});

describe('the supported Node.js range', () => {
  it('is stated by every published package as the oldest release tested here onwards', () => {
    const range = `>=${nodes.oldest.version}`;
    expect(packages.length).toBeGreaterThan(5);
    for (const { dir, manifest } of packages) expect(manifest.engines?.node, dir).toBe(range);
    expect(readManifest('.').engines?.node).toBe(range);
  });

  it('types the code against the pinned major', () => {
    const major = nodes.pinned.version.split('.')[0];
    expect(readManifest('.').devDependencies?.['@types/node']).toMatch(new RegExp(`^\\^${major}\\.`));
  });
});

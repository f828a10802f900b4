import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  SERVICES_START_TIMEOUT_MS,
  SERVICES_STOP_TIMEOUT_MS,
  postJson,
  serviceEnv,
  spawnService,
  tokenFor,
} from '../gateway/services.js';
import { machineNpmConfig } from '../deploy/node-runtime.js';
import type { ServiceProcess } from '../gateway/services.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PNPM = join(ROOT, '.tools/node_modules/.bin/pnpm');
/** The client and the workspace packages it depends on; the rest comes from the npm registry. */
const PACKAGES = ['packages/client', 'packages/progress'];

/** What the consumer runs: a plain Node ES module, no TypeScript, no workspace. */
const CONSUMER_SCRIPT = `
import { NodebatchClient, NotFoundError } from '@nodebatch/client';
import { lastValueFrom, toArray } from 'rxjs';

const client = new NodebatchClient({ url: process.env.GATEWAY_URL, token: () => process.env.TOKEN });
const { taskId } = await client.submitBatch({ action: 'cordon', nodes: ['sim-node-1', 'sim-node-2', 'sim-node-3'] });
const states = await lastValueFrom(client.watchTaskState(taskId).pipe(toArray()));
const missing = await client.getTask('no-such-task').catch((error) => error);
console.log(JSON.stringify({
  taskId,
  seqs: states.map((state) => state.lastSeq),
  final: { status: states.at(-1).status, succeeded: states.at(-1).succeeded },
  notFound: missing instanceof NotFoundError ? missing.code : String(missing),
}));
`;

let db: TestDatabase;
let worker: ServiceProcess;
let gateway: ServiceProcess;
let project: string;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'nodebatch-consumer-'));
  db = await createTestDatabase({ prefix: 'e2e_consumer' });
  const env = serviceEnv(db.url, { REDIS_URL: sharedRedisUrl(), QUEUE_NAME: uniqueName('e2e_consumer_q') });
  worker = await spawnService('worker', env);
  gateway = await spawnService('gateway', env);
}, SERVICES_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([gateway?.stop(), worker?.stop()]);
  await db?.drop();
  if (project) await rm(project, { recursive: true, force: true });
}, SERVICES_STOP_TIMEOUT_MS);

it('installs from pnpm pack tarballs into a plain npm project and follows a task from a Node script there', async () => {
  const tarballs = join(project, 'tarballs');
  for (const dir of PACKAGES) {
    // pack turns workspace:* into the packages' versions, as a publish would.
    await run(PNPM, ['pack', '--pack-destination', tarballs], { cwd: join(ROOT, dir) });
  }
  const files = (await readdir(tarballs)).map((file) => join(tarballs, file));
  expect(files).toHaveLength(PACKAGES.length);
  const app = join(project, 'app');
  await run('mkdir', ['-p', app]);
  await writeFile(
    join(app, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  await run('npm', ['install', '--no-audit', '--no-fund', ...files], {
    cwd: app,
    timeout: 300_000,
    env: { ...process.env, ...machineNpmConfig() },
  });
  await writeFile(join(app, 'follow.mjs'), CONSUMER_SCRIPT);

  const token = await tokenFor('outside-user');
  const { stdout } = await run(process.execPath, ['follow.mjs'], {
    cwd: app,
    env: { PATH: process.env.PATH, GATEWAY_URL: gateway.ready.gatewayUrl as string, TOKEN: token },
    timeout: 120_000,
  });
  const result = JSON.parse(stdout) as {
    taskId: string;
    seqs: number[];
    final: { status: string; succeeded: number };
    notFound: string;
  };
  expect(result.seqs).toEqual(result.seqs.map((_, i) => i + 1));
  expect(result.final).toEqual({ status: 'completed', succeeded: 3 });
  expect(result.notFound).toBe('TASK_NOT_FOUND');
  // The task the script followed is the one the gateway holds.
  const check = await postJson(
    `${gateway.ready.gatewayUrl as string}/api/v1/tasks/${result.taskId}/cancel`,
    token,
    {},
  );
  expect(check.body.code).toBe('TASK_ALREADY_ENDED');
}, 600_000);

import { NodebatchClient } from '@nodebatch/client';
import type { StoredEvent } from '@nodebatch/progress';
import { createTestDatabase, freePort, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  SERVICES_START_TIMEOUT_MS,
  SERVICES_STOP_TIMEOUT_MS,
  serviceEnv,
  spawnService,
  tokenFor,
} from '../gateway/services.js';
import type { ServiceProcess } from '../gateway/services.js';
import { runCli, runCliInTerminal } from './run-cli.js';

let db: TestDatabase;
let worker: ServiceProcess;
let gateway: ServiceProcess;
let gatewayEnv: Record<string, string>;
let cliEnv: Record<string, string | undefined>;
let client: NodebatchClient;

const nodes = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => `sim-node-${from + i}`);
const linesOf = (text: string) => text.split(/\r?\n/).filter(Boolean);
/** The node of a `node: succeeded` line, which may end with the operation's message in parentheses. */
const succeededNode = (line: string) => /^(\S+): succeeded(?: \(.*\))?$/.exec(line)?.[1];
const taskIdIn = (text: string) => /task ([0-9a-f-]{36})/.exec(text)?.[1];

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'e2e_cli' });
  const env = serviceEnv(db.url, {
    REDIS_URL: sharedRedisUrl(),
    QUEUE_NAME: uniqueName('e2e_cli_q'),
    NODEBATCH_SIM_NODES: '200',
    NODEBATCH_SIM_LATENCY_MS: '200',
    WORKER_SHUTDOWN_GRACE_MS: '1000',
  });
  worker = await spawnService('worker', env);
  // A fixed port, so the gateway can be restarted where the command line expects it.
  gatewayEnv = { ...env, PORT: String(await freePort()) };
  gateway = await spawnService('gateway', gatewayEnv);
  const token = await tokenFor('cli-user');
  cliEnv = {
    NODEBATCH_URL: gateway.ready.gatewayUrl as string,
    NODEBATCH_TOKEN: token,
    NODEBATCH_TOKEN_FILE: undefined,
  };
  client = new NodebatchClient({ url: gateway.ready.gatewayUrl as string, token });
}, SERVICES_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([gateway?.stop(), worker?.stop()]);
  await db?.drop();
}, SERVICES_STOP_TIMEOUT_MS);

// Each command is a Node process compiling TypeScript on start: seconds each on a busy machine.
describe('nodebatch without a terminal', { timeout: 480_000 }, () => {
  it('submits and returns the task id when not asked to follow (exit 0)', async () => {
    const run = runCli(['cordon', 'sim-node-1', 'sim-node-2'], cliEnv);
    expect(await run.exited, run.stderr()).toBe(0);
    const taskId = taskIdIn(run.stdout());
    expect(run.stdout()).toMatch(/^task \S+ accepted; follow it with: nodebatch task \S+ --follow\n$/);
    const state = await client.getTask(taskId!);
    expect(state).toMatchObject({ action: 'cordon', nodes: ['sim-node-1', 'sim-node-2'] });
  });

  it('--follow prints one line per node and the summary, no progress bar, exit 0 when every node succeeded', async () => {
    const run = runCli(['cordon', ...nodes(3, 4), '--follow'], cliEnv);
    expect(await run.exited, run.stderr()).toBe(0);
    const lines = linesOf(run.stdout());
    expect(lines[0]).toMatch(/^task \S+: cordon of 4 nodes$/);
    expect(lines.map(succeededNode).filter(Boolean).sort()).toEqual(nodes(3, 4).sort());
    expect(lines[1]).toBe('simulated cluster: no real node is changed');
    expect(lines.at(-1)).toMatch(/^task \S+ completed \(simulated\): 4 succeeded, 0 failed, 0 skipped of 4$/);
    expect(run.stdout()).not.toContain('\r');
  });

  it('exits 1 when a node failed, with the reason on its line', async () => {
    const run = runCli(['uncordon', 'sim-node-7', 'no-such-node', '--follow'], cliEnv);
    expect(await run.exited).toBe(1);
    const lines = linesOf(run.stdout());
    expect(lines.map(succeededNode)).toContain('sim-node-7');
    expect(lines.find((line) => line.startsWith('no-such-node: failed: '))).toMatch(/not found/);
    expect(lines.at(-1)).toMatch(/completed \(simulated\): 1 succeeded, 1 failed, 0 skipped of 2$/);
  });

  it('--output json prints every event once as a JSON line, in seq order', async () => {
    const run = runCli(['cordon', ...nodes(8, 3), '--follow', '--output', 'json'], cliEnv);
    expect(await run.exited, run.stderr()).toBe(0);
    const events = linesOf(run.stdout()).map((line) => JSON.parse(line) as StoredEvent);
    expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events[0]).toMatchObject({ type: 'TaskCreated', data: { nodes: nodes(8, 3) } });
    expect(events.at(-1)?.type).toBe('TaskCompleted');
  });

  it('turns kubectl label and taint syntax into the batch params', async () => {
    const label = runCli(['label', 'sim-node-11', 'sim-node-12', 'team=blue', 'legacy-', '--follow'], cliEnv);
    expect(await label.exited, label.stdout() + label.stderr()).toBe(0);
    const labelled = await client.getTask(taskIdIn(label.stdout())!);
    expect(labelled.params).toEqual({ set: { team: 'blue' }, remove: ['legacy'] });
    expect(labelled.nodes).toEqual(['sim-node-11', 'sim-node-12']);

    const taint = runCli(
      [
        'taint',
        'sim-node-13',
        'dedicated=gpu:NoSchedule',
        'maintenance:NoExecute',
        'old:PreferNoSchedule-',
        'stale-',
      ],
      { ...cliEnv },
    );
    expect(await taint.exited, taint.stderr()).toBe(0);
    const tainted = await client.getTask(taskIdIn(taint.stdout())!);
    expect(tainted.params).toEqual({
      add: [
        { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
        { key: 'maintenance', effect: 'NoExecute' },
      ],
      remove: [{ key: 'old', effect: 'PreferNoSchedule' }, { key: 'stale' }],
    });
  });

  it('maps drain flags with kubectl names to the batch params', async () => {
    const run = runCli(
      [
        'drain',
        'sim-node-14',
        '--force',
        '--delete-emptydir-data',
        '--grace-period',
        '30',
        '--timeout',
        '2m30s',
        '--pod-selector',
        'app=web',
        '--disable-eviction',
        '--skip-wait-for-delete-timeout',
        '60',
        '--dry-run=server',
      ],
      { ...cliEnv, NODEBATCH_TOKEN: await tokenFor('cli-admin', 'admin') },
    );
    expect(await run.exited, run.stderr()).toBe(0);
    const admin = new NodebatchClient({
      url: cliEnv.NODEBATCH_URL!,
      token: await tokenFor('cli-admin', 'admin'),
    });
    const state = await admin.getTask(taskIdIn(run.stdout())!);
    expect(state.params).toEqual({
      force: true,
      deleteEmptyDirData: true,
      gracePeriodSeconds: 30,
      timeoutSeconds: 150,
      podSelector: 'app=web',
      disableEviction: true,
      skipWaitForDeleteTimeoutSeconds: 60,
      dryRun: true,
    });
  });

  it('lists tasks, shows one, and reports a refused cancel with the gateway code (exit 1)', async () => {
    const submitted = runCli(['cordon', 'sim-node-15', '--follow'], cliEnv);
    expect(await submitted.exited).toBe(0);
    const taskId = taskIdIn(submitted.stdout())!;
    // Independent commands at once: each one's start-up takes a while on a busy machine.
    const tasks = runCli(['tasks'], cliEnv);
    const one = runCli(['task', taskId], cliEnv);
    const cancel = runCli(['cancel', taskId], cliEnv);
    expect(await tasks.exited, tasks.stderr()).toBe(0);
    expect(linesOf(tasks.stdout())[0]).toMatch(/^TASK\s+ACTION\s+STATUS\s+DONE/);
    expect(tasks.stdout()).toMatch(
      new RegExp(`${taskId}\\s+cordon\\s+completed\\s+1/1\\s.*\\sdefault$`, 'm'),
    );
    expect(await one.exited).toBe(0);
    expect(one.stdout()).toBe(
      `task ${taskId} completed (simulated): 1 succeeded, 0 failed, 0 skipped of 1\n`,
    );
    expect(await cancel.exited).toBe(1);
    expect(cancel.stderr()).toContain('TASK_ALREADY_ENDED');
  });

  it('lists the nodes a label selector picks, as a table and as JSON', async () => {
    const json = runCli(['nodes', '-l', 'kubernetes.io/hostname=sim-node-3', '--output', 'json'], cliEnv);
    const text = runCli(['nodes', '-l', 'kubernetes.io/hostname in (sim-node-3,sim-node-4)'], cliEnv);
    expect(await json.exited, json.stderr()).toBe(0);
    const listed = JSON.parse(json.stdout()) as { name: string }[];
    expect(listed.map((node) => node.name)).toEqual(['sim-node-3']);
    expect(await text.exited, text.stderr()).toBe(0);
    const [header, ...rows] = linesOf(text.stdout());
    expect(header).toMatch(/^NAME\s+READY\s+SCHEDULABLE/);
    expect(rows.map((row) => row.split(/\s+/)[0]).sort()).toEqual(['sim-node-3', 'sim-node-4']);
  });

  it('refuses what it cannot read with exit 2 and a message naming it', async () => {
    const noSpecs = runCli(['label', 'sim-node-1'], cliEnv);
    const badTaint = runCli(['taint', 'sim-node-1', 'dedicated=gpu'], cliEnv);
    const noUrl = runCli(['tasks'], { ...cliEnv, NODEBATCH_URL: undefined });
    const noToken = runCli(['tasks'], { ...cliEnv, NODEBATCH_TOKEN: undefined });
    expect(await noSpecs.exited).toBe(2);
    expect(noSpecs.stderr()).toContain('give labels: key=value to set, key- to remove');
    expect(await badTaint.exited).toBe(2);
    expect(badTaint.stderr()).toContain('"dedicated=gpu": a taint to add needs an effect');
    expect(await noUrl.exited).toBe(2);
    expect(noUrl.stderr()).toContain('NODEBATCH_URL is not set');
    expect(await noToken.exited).toBe(1);
    expect(noToken.stderr()).toMatch(/UNAUTHENTICATED[\s\S]*hint: set NODEBATCH_TOKEN/);
  });

  it('on SIGINT with --cancel-on-interrupt cancels the task and exits 130', async () => {
    const run = runCli(
      ['cordon', ...nodes(100, 30), '--concurrency', '1', '--follow', '--cancel-on-interrupt'],
      cliEnv,
    );
    await run.waitForOutput((out) => out.includes(': succeeded'), 'the first node line');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    const taskId = taskIdIn(run.stdout())!;
    expect(run.stderr()).toContain(`cancel of task ${taskId} requested`);
    await vi.waitFor(async () => expect((await client.getTask(taskId)).status).toBe('cancelled'), {
      timeout: 60_000,
      interval: 200,
    });
  });

  // Restarts the gateway: after the tests that need it steady.
  it('survives a gateway restart mid-follow without losing or repeating a line', async () => {
    const batch = nodes(40, 30);
    const run = runCli(['cordon', ...batch, '--concurrency', '1', '--follow'], cliEnv);
    await run.waitForOutput(
      (out) => linesOf(out).filter((line) => succeededNode(line) !== undefined).length >= 3,
      'three node lines',
    );
    await gateway.kill();
    const linesAtKill = linesOf(run.stdout()).length;
    gateway = await spawnService('gateway', gatewayEnv);
    expect(await run.exited, run.stderr()).toBe(0);
    const lines = linesOf(run.stdout());
    expect(lines.length).toBeGreaterThan(linesAtKill);
    const nodeLines = lines.filter((line) => succeededNode(line) !== undefined);
    expect(nodeLines).toHaveLength(batch.length);
    expect(new Set(nodeLines).size).toBe(batch.length);
    expect(lines.at(-1)).toMatch(/completed \(simulated\): 30 succeeded, 0 failed, 0 skipped of 30$/);
  });
});

describe('nodebatch in a terminal', { timeout: 480_000 }, () => {
  it('follows by default with a live progress bar redrawn in place, and exits 0', async () => {
    const run = runCliInTerminal(['cordon', ...nodes(80, 5)], cliEnv);
    expect(await run.exited, run.stdout()).toBe(0);
    const screen = run.stdout();
    expect(screen).toMatch(/\r\[#*-*\] +\d+% \d+\/5 nodes/);
    expect(screen).toContain('\u001b[K');
    expect(screen).toMatch(/sim-node-84: succeeded/);
    expect(screen).toMatch(/completed \(simulated\): 5 succeeded, 0 failed, 0 skipped of 5\r?\n$/);
  });

  it('on Ctrl-C asks whether to cancel; yes cancels the task and exits 130', async () => {
    const run = runCliInTerminal(['cordon', ...nodes(120, 30), '--concurrency', '1'], cliEnv);
    await run.waitForOutput((out) => out.includes(': succeeded'), 'the first node line');
    run.write('\u0003');
    await run.waitForOutput((out) => out.includes('? [y/N]'), 'the question');
    run.write('y\r');
    expect(await run.exited, run.stdout()).toBe(130);
    const taskId = taskIdIn(run.stdout())!;
    expect(run.stdout()).toContain(`cancel of task ${taskId} requested`);
    await vi.waitFor(async () => expect((await client.getTask(taskId)).status).toBe('cancelled'), {
      timeout: 60_000,
      interval: 200,
    });
  });
});

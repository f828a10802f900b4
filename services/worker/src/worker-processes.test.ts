import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger, loadConfig } from '@nodebatch/config';
import { createBatchQueue, createRuntime } from '@nodebatch/runtime';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { createTestDatabase, sharedRedisUrl } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  eventsOfType,
  submitBatch,
  testEnv,
  waitForEnd,
  waitForEvents,
} from './test-support/batch-harness.js';

/*
 * Two workers as separate processes; the one running the batch is killed with
 * SIGKILL half-way. The other takes the job over once its lock expires and
 * finishes from the log. Each process has its own simulated cluster, whose
 * latency makes the batch last long enough to be killed in the middle.
 */

const WORKER_SCRIPT = fileURLToPath(new URL('./test-support/worker-process.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const NODE_COUNT = 200;
const nodes = Array.from({ length: NODE_COUNT }, (_, i) => `sim-node-${i + 1}`);
const logger = createLogger({ level: 'silent' });

interface WorkerProcess {
  child: ChildProcess;
  id: string;
  output: string[];
}

async function spawnWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', WORKER_SCRIPT, '2000', '500'],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...env,
        LOG_LEVEL: 'warn',
        NODEBATCH_CLUSTER: 'simulated',
        NODEBATCH_SIM_NODES: String(NODE_COUNT),
        NODEBATCH_SIM_LATENCY_MS: '20',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  const id = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      output.push(line);
      try {
        const parsed = JSON.parse(line) as { workerId?: string };
        if (parsed.workerId) resolve(parsed.workerId);
      } catch {
        // Not a JSON line: kept in `output` for the failure message.
      }
    });
    child.once('exit', (code) =>
      reject(new Error(`worker exited with ${code} before it was ready:\n${output.join('\n')}`)),
    );
  });
  return { child, id, output };
}

async function stop(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  const exited = once(worker.child, 'exit');
  worker.child.kill('SIGTERM');
  await exited;
}

describe.each([
  { backend: 'redis', redisUrl: sharedRedisUrl() },
  { backend: 'postgres (no Redis)', redisUrl: undefined },
])('two worker processes, queue on $backend', ({ redisUrl }) => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let runtime: Runtime;
  let queue: BatchQueue;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ prefix: 'nb_worker_kill' });
    env = testEnv(database.url, redisUrl === undefined ? {} : { redisUrl });
    const { config } = loadConfig({ env });
    expect(config.redis === null).toBe(redisUrl === undefined);
    runtime = await createRuntime({ config, logger });
    queue = createBatchQueue({ config, logger });
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map(stop));
  });

  afterAll(async () => {
    await queue?.close();
    await runtime?.close();
    await database?.drop();
  });

  it('finishes the batch of a worker killed with SIGKILL, every node succeeded once, one terminal event', async () => {
    workers.push(...(await Promise.all([spawnWorker(env), spawnWorker(env)])));
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes, concurrency: 2 });

    const [started] = await waitForEvents(runtime, taskId, (event) => event.type === 'TaskStarted');
    const victim = workers.find(
      (worker) => started?.type === 'TaskStarted' && worker.id === started.data.workerId,
    );
    expect(victim).toBeDefined();
    await waitForEvents(runtime, taskId, (event) => event.type === 'NodeSucceeded', 40);
    victim!.child.kill('SIGKILL');
    await once(victim!.child, 'exit');

    const { state, events } = await waitForEnd(runtime, taskId, 90_000);
    const terminal = events.filter((event) =>
      ['TaskCompleted', 'TaskCancelled', 'TaskFailed'].includes(event.type),
    );
    expect(terminal).toHaveLength(1);
    expect(state.outcome?.type).toBe('TaskCompleted');
    expect(state.outcome?.data).toEqual({ succeeded: NODE_COUNT, failed: 0, skipped: 0 });
    expect(state.succeededNodes).toHaveLength(NODE_COUNT);
    expect(new Set(state.succeededNodes)).toEqual(new Set(nodes));

    // The survivor resumed: a second TaskStarted from the other worker, and the batch was cut mid-way.
    const taskStarts = eventsOfType(events, 'TaskStarted');
    const survivor = workers.find((worker) => worker !== victim)!;
    expect(taskStarts.map((event) => [event.data.workerId, event.data.attempt])).toEqual([
      [victim!.id, 1],
      [survivor.id, 2],
    ]);
    const resumedAt = taskStarts[1]!.seq;
    const doneBefore = new Set(
      eventsOfType(events, 'NodeSucceeded')
        .filter((event) => event.seq < resumedAt)
        .map((event) => event.data.node),
    );
    expect(doneBefore.size).toBeGreaterThanOrEqual(40);
    expect(doneBefore.size).toBeLessThan(NODE_COUNT);
    // Nodes finished before the kill were not started again.
    const restarted = eventsOfType(events, 'NodeStarted').filter(
      (event) => event.seq > resumedAt && doneBefore.has(event.data.node),
    );
    expect(restarted).toHaveLength(0);

    // SIGTERM: the idle survivor stops cleanly.
    const exited = once(survivor.child, 'exit');
    survivor.child.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    // Starting two processes from TypeScript sources is slow on a loaded machine; the waits are event-driven.
  }, 180_000);
});

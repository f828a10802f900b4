import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger, loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import { createBatchQueue, createRuntime } from '@nodebatch/runtime';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { createTestDatabase, sharedRedisUrl } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWorker } from './start-worker.js';
import { removeQueueKeys } from './test-support/remove-queue-keys.js';
import type { WorkerHandle } from './start-worker.js';
import {
  eventsOfType,
  submitBatch,
  testEnv,
  waitForEnd,
  waitForEvents,
} from './test-support/batch-harness.js';

/*
 * Two workers in two processes: a child process takes the batch and is killed
 * with SIGKILL half-way; the worker in the test process takes the job over
 * once its lock expires and finishes from the log. Each process has its own
 * simulated cluster, whose latency makes the batch last long enough to be
 * killed in the middle.
 */

const WORKER_SCRIPT = fileURLToPath(new URL('./test-support/worker-process.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const NODE_COUNT = 200;
const nodes = Array.from({ length: NODE_COUNT }, (_, i) => `sim-node-${i + 1}`);
const logger = createLogger({ level: 'silent' });
const CLUSTER_ENV = {
  NODEBATCH_CLUSTER: 'simulated',
  NODEBATCH_SIM_NODES: String(NODE_COUNT),
  NODEBATCH_SIM_LATENCY_MS: '50',
};
/** Short locks, so the job of a killed worker is taken over within seconds. */
const LOCK_DURATION_MS = 2000;
const STALLED_INTERVAL_MS = 500;

interface WorkerProcess {
  child: ChildProcess;
  id: string;
  output: string[];
}

async function spawnWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      WORKER_SCRIPT,
      String(LOCK_DURATION_MS),
      String(STALLED_INTERVAL_MS),
    ],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...env,
        LOG_LEVEL: 'warn',
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
  let config: NodebatchConfig;
  let runtime: Runtime;
  let queue: BatchQueue;
  let child: WorkerProcess | undefined;
  let survivor: WorkerHandle | undefined;

  beforeAll(async () => {
    database = await createTestDatabase({ prefix: 'nb_worker_kill' });
    env = { ...testEnv(database.url, redisUrl === undefined ? {} : { redisUrl }), ...CLUSTER_ENV };
    config = loadConfig({ env }).config;
    expect(config.redis === null).toBe(redisUrl === undefined);
    runtime = await createRuntime({ config, logger });
    queue = createBatchQueue({ config, logger });
  });

  afterEach(async () => {
    if (child) await stop(child);
    await survivor?.close({ graceMs: 1000 });
  });

  afterAll(async () => {
    await queue?.close();
    await runtime?.close();
    await database?.drop();
    if (redisUrl !== undefined && config) await removeQueueKeys(redisUrl, config.queue.name);
  });

  it('finishes the batch of a worker killed with SIGKILL, every node succeeded once, one terminal event', async () => {
    child = await spawnWorker(env);
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes, concurrency: 2 });
    const [started] = await waitForEvents(runtime, taskId, (event) => event.type === 'TaskStarted');
    expect(started?.data).toEqual({ workerId: child.id, attempt: 1 });

    // The second worker is up before the first dies, as in a deployment with two replicas.
    survivor = await startWorker({
      config,
      logger,
      runtime,
      queue: { lockDurationMs: LOCK_DURATION_MS, stalledIntervalMs: STALLED_INTERVAL_MS },
    });
    await waitForEvents(runtime, taskId, (event) => event.type === 'NodeSucceeded', 20);
    child.child.kill('SIGKILL');
    await once(child.child, 'exit');

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
    expect(taskStarts.map((event) => [event.data.workerId, event.data.attempt])).toEqual([
      [child.id, 1],
      [survivor.id, 2],
    ]);
    const resumedAt = taskStarts[1]!.seq;
    const doneBefore = new Set(
      eventsOfType(events, 'NodeSucceeded')
        .filter((event) => event.seq < resumedAt)
        .map((event) => event.data.node),
    );
    expect(doneBefore.size).toBeGreaterThanOrEqual(20);
    expect(doneBefore.size).toBeLessThan(NODE_COUNT);
    // Nodes finished before the kill were not started again.
    const restarted = eventsOfType(events, 'NodeStarted').filter(
      (event) => event.seq > resumedAt && doneBefore.has(event.data.node),
    );
    expect(restarted).toHaveLength(0);
  }, 180_000);
});

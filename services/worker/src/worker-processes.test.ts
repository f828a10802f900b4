import { once } from 'node:events';
import { createLogger } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { sharedRedisUrl } from '@nodebatch/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWorker } from './start-worker.js';
import type { WorkerHandle } from './start-worker.js';
import { startBatchSetup } from '../test/support/batch-setup.js';
import type { BatchSetup } from '../test/support/batch-setup.js';
import { spawnWorker as spawnWorkerProcess, stopWorker } from '../test/support/worker-process.js';
import type { WorkerProcess } from '../test/support/worker-process.js';
import {
  eventsOfType,
  expectEachNodeSucceededOnce,
  simulatedClusterEnv,
  simulatedNodes,
  submitBatch,
  waitForEnd,
  waitForEvents,
} from '../test/support/batch-harness.js';

/*
 * Two workers in two processes: a child process takes the batch and is killed
 * with SIGKILL half-way; the worker in the test process takes the job over
 * once its lock expires and finishes from the log. Each process has its own
 * simulated cluster, whose latency makes the batch last long enough to be
 * killed in the middle.
 */

const NODE_COUNT = 200;
const nodes = simulatedNodes(NODE_COUNT);
const logger = createLogger({ level: 'silent' });
const CLUSTER_ENV = simulatedClusterEnv(NODE_COUNT, 50);
/** Short locks, so the job of a killed worker is taken over within seconds. */
const LOCK_DURATION_MS = 2000;
const STALLED_INTERVAL_MS = 500;

function spawnWorker(env: Record<string, string>, lockDurationMs = LOCK_DURATION_MS): Promise<WorkerProcess> {
  return spawnWorkerProcess(env, { lockDurationMs, stalledIntervalMs: STALLED_INTERVAL_MS });
}

const stop = stopWorker;

describe.each([
  { backend: 'redis', redisUrl: sharedRedisUrl() },
  { backend: 'postgres (no Redis)', redisUrl: undefined },
])('two worker processes, queue on $backend', ({ redisUrl }) => {
  let setup: BatchSetup;
  let env: Record<string, string>;
  let config: NodebatchConfig;
  let runtime: Runtime;
  let queue: BatchQueue;
  let child: WorkerProcess | undefined;
  let survivor: WorkerHandle | undefined;

  beforeAll(async () => {
    setup = await startBatchSetup('nb_worker_kill', { env: CLUSTER_ENV, redisUrl: redisUrl ?? null });
    ({ env, config, runtime, queue } = setup);
    expect(config.redis === null).toBe(redisUrl === undefined);
  });

  afterEach(async () => {
    if (child) await stop(child);
    await survivor?.close({ graceMs: 1000 });
  });

  afterAll(async () => {
    await setup?.close();
  });

  it('finishes the batch of a worker killed with SIGKILL, every node succeeded once, one terminal event', async () => {
    child = await spawnWorker(env);
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes, concurrency: 2 });
    const [started] = await waitForEvents(runtime, taskId, (event) => event.type === 'TaskStarted');
    expect(started?.data).toEqual({
      workerId: child.id,
      attempt: 1,
      clusterMode: 'simulated',
      cluster: 'default',
    });

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
    expectEachNodeSucceededOnce(events, nodes);
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

describe('a worker process stopped with SIGTERM mid-batch', () => {
  let setup: BatchSetup;
  let env: Record<string, string>;
  let config: NodebatchConfig;
  let runtime: Runtime;
  let queue: BatchQueue;
  let child: WorkerProcess | undefined;
  let survivor: WorkerHandle | undefined;

  beforeAll(async () => {
    setup = await startBatchSetup('nb_worker_term', {
      env: { ...CLUSTER_ENV, LOG_LEVEL: 'info', WORKER_SHUTDOWN_GRACE_MS: '500' },
      redisUrl: null,
    });
    ({ env, config, runtime, queue } = setup);
  });

  afterAll(async () => {
    if (child) await stop(child);
    await survivor?.close({ graceMs: 1000 });
    await setup?.close();
  });

  it('exits 0 after handing the task back, and another worker finishes it from the log', async () => {
    // A lock far longer than the test: the task moves on only because it was handed back.
    child = await spawnWorker(env, 600_000);
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes, concurrency: 2 });
    const [started] = await waitForEvents(runtime, taskId, (event) => event.type === 'TaskStarted');
    expect(started?.data).toEqual({
      workerId: child.id,
      attempt: 1,
      clusterMode: 'simulated',
      cluster: 'default',
    });
    survivor = await startWorker({ config, logger, runtime });
    await waitForEvents(runtime, taskId, (event) => event.type === 'NodeSucceeded', 20);

    const exited = once(child.child, 'exit');
    child.child.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    const handedBack = child.output.filter((line) => line.includes('"task handed back"'));
    expect(handedBack).toHaveLength(1);

    const { state, events } = await waitForEnd(runtime, taskId, 90_000);
    expect(state.outcome?.data).toEqual({ succeeded: NODE_COUNT, failed: 0, skipped: 0 });
    expect(eventsOfType(events, 'TaskStarted').map((event) => event.data.workerId)).toEqual([
      child.id,
      survivor.id,
    ]);
    expect(events.filter((event) => event.type === 'TaskCompleted')).toHaveLength(1);
  }, 180_000);
});

import { createLogger } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import { startFakeKubeApi } from '@nodebatch/kube/testing';
import type { FakeKubeApi } from '@nodebatch/kube/testing';
import { readTaskEvents } from '@nodebatch/progress';
import type { StoredEvent } from '@nodebatch/progress';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWorker } from './start-worker.js';
import type { WorkerHandle } from './start-worker.js';
import { fakeApiOperator, startBatchSetup } from '../test/support/batch-setup.js';
import type { BatchSetup } from '../test/support/batch-setup.js';
import { submitBatch, waitForEnd, waitForEvents } from '../test/support/batch-harness.js';

/**
 * WORKER_JOB_CONCURRENCY bounds the tasks one worker runs at once: the
 * README's promise, read from the configuration as a deployment sets it.
 */

const JOB_CONCURRENCY = 2;
const TASKS = 4;
const nodes = Array.from({ length: TASKS }, (_, i) => `jobs-node-${i + 1}`);
const podOf = (node: string) => `default/${node}-app`;

const logger = createLogger({ level: 'silent' });
let setup: BatchSetup;
let config: NodebatchConfig;
let runtime: Runtime;
let queue: BatchQueue;
let api: FakeKubeApi;
let worker: WorkerHandle | undefined;

beforeAll(async () => {
  setup = await startBatchSetup('nb_jobs', { env: { WORKER_JOB_CONCURRENCY: String(JOB_CONCURRENCY) } });
  ({ config, runtime, queue } = setup);
  api = await startFakeKubeApi({
    nodes,
    pods: nodes.map((node) => ({ name: `${node}-app`, node, ownerKind: 'ReplicaSet' })),
  });
});

afterAll(async () => {
  await worker?.close({ graceMs: 1000 });
  await api?.close();
  await setup?.close();
});

it(`runs at most WORKER_JOB_CONCURRENCY=${JOB_CONCURRENCY} tasks at once in one worker`, async () => {
  expect(config.worker.jobConcurrency).toBe(JOB_CONCURRENCY);
  // Every drain waits on an eviction that a disruption budget refuses, until the test lets it go.
  for (const node of nodes) api.blockEviction(podOf(node), 'forever');
  // All jobs wait before the worker starts: a worker without the bound would take them all at once.
  const taskIds: string[] = [];
  for (const node of nodes) {
    taskIds.push(
      await submitBatch(runtime, queue, { action: 'drain', nodes: [node], params: { timeoutSeconds: 600 } }),
    );
  }
  worker = await startWorker({
    config,
    logger,
    operator: fakeApiOperator(config, api, logger),
    runtime,
  });

  // Each task that runs reports its refused eviction; the first two to do so are the ones running.
  const blocked = await firstBlocked(taskIds, JOB_CONCURRENCY);
  // They keep waiting (a second refusal each) while the other tasks stay untouched.
  await Promise.all(blocked.map((taskId) => waitForEvents(runtime, taskId, isRefusal, 2)));
  const idle = taskIds.filter((taskId) => !blocked.includes(taskId));
  for (const taskId of idle) {
    expect((await readTaskEvents(runtime.store, taskId)).map((event) => event.type)).toEqual(['TaskCreated']);
  }

  // Let every eviction through: the waiting tasks run as slots free up, and all finish.
  for (const node of nodes) api.blockEviction(podOf(node), 0);
  const ends = await Promise.all(taskIds.map((taskId) => waitForEnd(runtime, taskId)));
  expect(ends.map(({ state }) => state.outcome?.type)).toEqual(taskIds.map(() => 'TaskCompleted'));
  expect(mostAtOnce(ends.map(({ events }) => events))).toBe(JOB_CONCURRENCY);
});

function isRefusal(event: StoredEvent): boolean {
  return event.type === 'NodeProgress';
}

/** The first `count` tasks to report a refused eviction. */
async function firstBlocked(taskIds: readonly string[], count: number): Promise<string[]> {
  const order: string[] = [];
  await new Promise<void>((resolve, reject) => {
    for (const taskId of taskIds) {
      waitForEvents(runtime, taskId, isRefusal).then(() => {
        order.push(taskId);
        if (order.length === count) resolve();
      }, reject);
    }
  });
  return order.slice(0, count);
}

/**
 * The most tasks running at once, from the log's global positions: a task
 * runs from its TaskStarted to its terminal event.
 */
function mostAtOnce(logs: readonly (readonly StoredEvent[])[]): number {
  const edges = logs.flatMap((events) => {
    const started = events.find((event) => event.type === 'TaskStarted');
    const ended = events.at(-1)!;
    return started
      ? [
          { position: started.position, change: 1 },
          { position: ended.position, change: -1 },
        ]
      : [];
  });
  let running = 0;
  let most = 0;
  for (const { change } of edges.sort((a, b) => a.position - b.position)) {
    running += change;
    most = Math.max(most, running);
  }
  return most;
}

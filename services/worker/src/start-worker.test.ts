import type { NodebatchConfig } from '@nodebatch/config';
import type { NodeOperator } from '@nodebatch/kube';
import { startFakeKubeApi } from '@nodebatch/kube/testing';
import type { FakeKubeApi } from '@nodebatch/kube/testing';
import type { NewEvent, StoredEvent } from '@nodebatch/progress';
import { createBatchQueue } from '@nodebatch/runtime';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startWorker } from './start-worker.js';
import type { WorkerHandle, WorkerRuntime } from './start-worker.js';
import { removeQueueKeys } from '../test/support/remove-queue-keys.js';
import { fakeApiOperator, startBatchSetup } from '../test/support/batch-setup.js';
import type { BatchSetup } from '../test/support/batch-setup.js';
import {
  capturingLogger,
  eventsOfType,
  expectEachNodeSucceededOnce,
  submitBatch,
  waitForEnd,
  waitForEvents,
} from '../test/support/batch-harness.js';

const NODE_COUNT = 200;
const nodes = Array.from({ length: NODE_COUNT }, (_, i) => `node-${i + 1}`);

/** Log lines of the worker, to check what it says per task (not per event). */
const { logger, lines: logLines } = capturingLogger();

let setup: BatchSetup;
let config: NodebatchConfig;
let runtime: Runtime;
let api: FakeKubeApi;
let operator: NodeOperator;
let queue: BatchQueue;
let worker: WorkerHandle;
/** Queues this file made on the shared Redis besides the set-up's, removed at the end. */
const usedQueues: string[] = [];
/** Every append the worker made through the notifier, to see that events travel in batches. */
const appendSizes: number[] = [];

function countingRuntime(): WorkerRuntime {
  return {
    store: runtime.store,
    streams: runtime.streams,
    notifier: {
      append: (taskId, events, options) => {
        appendSizes.push(events.length);
        return runtime.notifier.append(taskId, events, options);
      },
    },
  };
}

beforeAll(async () => {
  setup = await startBatchSetup('nb_worker', { logger });
  ({ config, runtime, queue } = setup);
  api = await startFakeKubeApi({
    nodes,
    pods: nodes.flatMap((node) => [
      { name: `${node}-app`, node, ownerKind: 'ReplicaSet' },
      { name: `${node}-agent`, node, namespace: 'kube-system', ownerKind: 'DaemonSet' },
    ]),
  });
  operator = fakeApiOperator(config, api, logger);
  worker = await startWorker({
    config,
    logger,
    operator,
    runtime: countingRuntime(),
    retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
  });
});

afterAll(async () => {
  await worker?.close({ graceMs: 1000 });
  await api?.close();
  await setup?.close();
  await Promise.all(usedQueues.map((name) => removeQueueKeys(sharedRedisUrl(), name)));
});

function expectOneTerminal(events: readonly StoredEvent[]): void {
  const terminal = events.filter((event) =>
    ['TaskCompleted', 'TaskCancelled', 'TaskFailed'].includes(event.type),
  );
  expect(terminal).toHaveLength(1);
  expect(events.at(-1)).toBe(terminal[0]);
}

function expectAllSucceeded({ state, events }: Awaited<ReturnType<typeof waitForEnd>>): void {
  expectEachNodeSucceededOnce(events, nodes);
  expect(state.outcome?.type).toBe('TaskCompleted');
  expect(state.outcome?.data).toEqual({ succeeded: NODE_COUNT, failed: 0, skipped: 0 });
  expect(new Set(state.succeededNodes)).toEqual(new Set(nodes));
}

describe(`a ${NODE_COUNT}-node batch`, () => {
  it('cordons every node, in batched appends, with one log line at start and end', async () => {
    const appendsBefore = appendSizes.length;
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectAllSucceeded({ state, events });
    expectOneTerminal(events);
    expect(nodes.every((node) => api.nodes.get(node)?.spec.unschedulable === true)).toBe(true);
    expect(eventsOfType(events, 'TaskStarted').map((event) => event.data)).toEqual([
      { workerId: worker.id, attempt: 1, clusterMode: 'kubernetes', cluster: 'default' },
    ]);
    expect(eventsOfType(events, 'NodeStarted')).toHaveLength(NODE_COUNT);

    // 2 events per node and 2 per task travelled in far fewer appends than events.
    const appends = appendSizes.slice(appendsBefore);
    expect(appends.reduce((sum, size) => sum + size, 0)).toBe(events.length - 1);
    // A node's NodeSucceeded and the next node's NodeStarted are pushed together, so whatever the timing
    // an append carries two events or more but for a few at the ends of the lanes.
    expect(appends.length).toBeLessThanOrEqual(Math.ceil(events.length * 0.6));
    expect(Math.max(...appends)).toBeGreaterThan(1);

    // 'task ended' is logged once the terminal append has returned, which may be just after we saw it.
    const taskLines = () => logLines.filter((line) => line.taskId === taskId);
    await vi.waitFor(() =>
      expect(taskLines().map((line) => line.msg)).toEqual(['task started', 'task ended']),
    );
    expect(taskLines()[0]).toMatchObject({
      action: 'cordon',
      nodes: NODE_COUNT,
      concurrency: 10,
      attempt: 1,
    });
  });

  it('uncordons every node', async () => {
    const taskId = await submitBatch(runtime, queue, { action: 'uncordon', nodes });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectAllSucceeded({ state, events });
    expectOneTerminal(events);
    expect(nodes.every((node) => !api.nodes.get(node)?.spec.unschedulable)).toBe(true);
  });

  it('labels every node', async () => {
    const taskId = await submitBatch(runtime, queue, {
      action: 'label',
      nodes,
      params: { set: { 'nodebatch.test/pool': 'blue' } },
    });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectAllSucceeded({ state, events });
    expectOneTerminal(events);
    expect(
      nodes.every((node) => api.nodes.get(node)?.metadata.labels?.['nodebatch.test/pool'] === 'blue'),
    ).toBe(true);
  });

  it('taints every node', async () => {
    const taskId = await submitBatch(runtime, queue, {
      action: 'taint',
      nodes,
      params: { add: [{ key: 'nodebatch.test/maintenance', value: 'true', effect: 'NoSchedule' }] },
    });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectAllSucceeded({ state, events });
    expectOneTerminal(events);
    for (const node of nodes) {
      expect(api.nodes.get(node)?.spec.taints).toContainEqual(
        expect.objectContaining({ key: 'nodebatch.test/maintenance', value: 'true', effect: 'NoSchedule' }),
      );
    }
  });

  it('drains every node, reporting each evicted pod and leaving DaemonSet pods', async () => {
    const taskId = await submitBatch(runtime, queue, { action: 'drain', nodes });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectAllSucceeded({ state, events });
    expectOneTerminal(events);
    for (const node of nodes) {
      expect(api.nodes.get(node)?.spec.unschedulable).toBe(true);
      expect(api.pods.has(`default/${node}-app`)).toBe(false);
      expect(api.pods.has(`kube-system/${node}-agent`)).toBe(true);
    }
    // Drain runs fewer nodes at once than the patch-only actions unless the batch says otherwise.
    const started = logLines.find((line) => line.taskId === taskId && line.msg === 'task started');
    expect(started).toMatchObject({ action: 'drain', concurrency: 2 });
    const progress = eventsOfType(events, 'NodeProgress');
    expect(
      progress.filter((event) => event.data.done === 1 && event.data.message?.startsWith('evicted pod')),
    ).toHaveLength(NODE_COUNT);
  });
});

describe('drain and taint batches as a cluster owner expects', () => {
  it('cordons every node of a drain batch, with the reason, before the first eviction', async () => {
    const batch = ['order-1', 'order-2', 'order-3'];
    for (const node of batch) {
      api.addNode(node);
      api.addPod({ name: `${node}-app`, node, ownerKind: 'ReplicaSet' });
    }
    api.clearRequests();
    const taskId = await submitBatch(runtime, queue, {
      action: 'drain',
      nodes: batch,
      concurrency: 1,
      reason: 'kernel 6.9 rollout',
    });
    const { state, events } = await waitForEnd(runtime, taskId);
    expect(state.outcome?.data).toEqual({ succeeded: 3, failed: 0, skipped: 0 });
    expect(state.reason).toBe('kernel 6.9 rollout');
    const writes = api.requests
      .filter((request) => request.method === 'PATCH' || request.method === 'POST')
      .map((request) => `${request.method} ${request.path}`);
    const firstEviction = writes.findIndex((write) => write.startsWith('POST'));
    // The batch's first writes cordon every node; each drain then cordons again (idempotent) on its own.
    expect(writes.slice(0, 3).sort()).toEqual(batch.map((node) => `PATCH /api/v1/nodes/${node}`));
    expect(firstEviction).toBeGreaterThan(3);
    expect(writes.slice(3, firstEviction)).toEqual(['PATCH /api/v1/nodes/order-1']);
    expect(api.requestsTo('PATCH', '/api/v1/nodes/order-2')[0]!.body).toEqual({
      spec: { unschedulable: true },
      metadata: {
        annotations: {
          'nodebatch.io/cordon-reason': 'kernel 6.9 rollout',
          'nodebatch.io/cordoned-by': 'tester',
          'nodebatch.io/cordoned-at': expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        },
      },
    });
    expect(eventsOfType(events, 'NodeSucceeded').map((event) => event.data.message)).toEqual(
      batch.map(() => '1 pod(s) evicted and gone, 0 left (DaemonSet, mirror or long-terminating)'),
    );
  });

  it('fails a drained node with a bare pod and an emptyDir pod without evicting either, saying why', async () => {
    api.addNode('gated-1');
    api.addPod({ namespace: 'shop', name: 'bare', node: 'gated-1' });
    api.addPod({
      namespace: 'shop',
      name: 'scratch',
      node: 'gated-1',
      ownerKind: 'ReplicaSet',
      emptyDir: true,
    });
    const taskId = await submitBatch(runtime, queue, { action: 'drain', nodes: ['gated-1'] });
    const { state } = await waitForEnd(runtime, taskId);
    expect(state.failedNodes).toEqual([
      expect.objectContaining({
        node: 'gated-1',
        code: 'DRAIN_REFUSED',
        retryable: false,
        error:
          'drain of node "gated-1" refused: cannot delete Pods with local storage (use deleteEmptyDirData to override): shop/scratch; ' +
          'cannot delete Pods that declare no controller (use force to override): shop/bare; no pod was evicted and the node stays cordoned',
      }),
    ]);
    expect(api.requestsTo('POST', /\/pods\/(bare|scratch)\/eviction$/)).toEqual([]);
    expect(api.pods.has('shop/bare') && api.pods.has('shop/scratch')).toBe(true);
  });

  it('shows each disruption budget wait as NodeProgress naming the pod and the budget', async () => {
    api.addNode('budget-1');
    api.addPod({
      namespace: 'shop',
      name: 'db-0',
      node: 'budget-1',
      ownerKind: 'StatefulSet',
      labels: { app: 'db' },
    });
    api.addDisruptionBudget({ name: 'db-pdb', namespace: 'shop', selector: 'app=db', refusals: 1 });
    const taskId = await submitBatch(runtime, queue, { action: 'drain', nodes: ['budget-1'] });
    const { state, events } = await waitForEnd(runtime, taskId);
    expect(state.outcome?.data).toEqual({ succeeded: 1, failed: 0, skipped: 0 });
    expect(eventsOfType(events, 'NodeProgress').map((event) => event.data.message)).toContainEqual(
      expect.stringMatching(
        /^eviction of pod shop\/db-0 refused: disruption budget db-pdb does not allow it now; retrying in \d+ s$/,
      ),
    );
  });

  it('dry run: reports what would be evicted and what blocks it, and changes nothing', async () => {
    api.addNode('dry-1');
    api.addPod({ namespace: 'shop', name: 'web', node: 'dry-1', ownerKind: 'ReplicaSet' });
    api.addPod({ namespace: 'shop', name: 'loner', node: 'dry-1' });
    const before = structuredClone(api.nodes.get('dry-1'));
    const taskId = await submitBatch(runtime, queue, {
      action: 'drain',
      nodes: ['dry-1'],
      params: { dryRun: true },
    });
    const { state, events } = await waitForEnd(runtime, taskId);
    expect(state.outcome?.data).toEqual({ succeeded: 1, failed: 0, skipped: 0 });
    const loner = 'cannot delete Pods that declare no controller (use force to override)';
    const succeeded = eventsOfType(events, 'NodeSucceeded')[0]!.data;
    expect(succeeded.message).toBe(`dry run: 1 pod(s) would be evicted; blocked: shop/loner (${loner})`);
    // The same, as data the console lists per node.
    expect(succeeded.drainPlan).toEqual({
      evict: ['shop/web'],
      left: [],
      blocked: [{ pod: 'shop/loner', reason: loner }],
    });
    expect(state.nodeStates['dry-1']!.drainPlan).toEqual(succeeded.drainPlan);
    expect(api.nodes.get('dry-1')).toEqual(before);
    expect(api.pods.has('shop/web') && api.pods.has('shop/loner')).toBe(true);
  });

  it('copies taints from a source read once per batch, and fails the task once when the source is missing', async () => {
    api.addNode({ name: 'tmpl', taints: [{ key: 'pool', value: 'gpu', effect: 'NoSchedule' }] });
    const targets = ['copy-1', 'copy-2', 'copy-3'];
    for (const node of targets) api.addNode(node);
    api.clearRequests();
    const taskId = await submitBatch(runtime, queue, {
      action: 'taint',
      nodes: targets,
      params: { copyFrom: 'tmpl' },
    });
    const { state } = await waitForEnd(runtime, taskId);
    expect(state.outcome?.data).toEqual({ succeeded: 3, failed: 0, skipped: 0 });
    expect(api.requestsTo('GET', '/api/v1/nodes/tmpl')).toHaveLength(1);
    for (const node of targets)
      expect(api.nodes.get(node)!.spec.taints).toEqual([{ key: 'pool', value: 'gpu', effect: 'NoSchedule' }]);

    const missing = await submitBatch(runtime, queue, {
      action: 'taint',
      nodes: targets,
      params: { copyFrom: 'no-such-template' },
    });
    const ended = await waitForEnd(runtime, missing);
    expect(ended.state.outcome).toMatchObject({
      type: 'TaskFailed',
      data: { code: 'SOURCE_NODE_NOT_FOUND', error: expect.stringContaining('"no-such-template"') },
    });
    expect(eventsOfType(ended.events, 'NodeFailed')).toEqual([]);
  });
});

describe('node failures', () => {
  it('fails a node the API server does not know (404) and completes the others', async () => {
    const taskId = await submitBatch(runtime, queue, {
      action: 'cordon',
      nodes: ['node-1', 'no-such-node', 'node-2'],
    });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.type).toBe('TaskCompleted');
    expect(state.outcome?.data).toEqual({ succeeded: 2, failed: 1, skipped: 0 });
    expect(eventsOfType(events, 'NodeFailed').map((event) => event.data)).toEqual([
      expect.objectContaining({ node: 'no-such-node', code: 'NODE_NOT_FOUND', retryable: false }),
    ]);
    expect(eventsOfType(events, 'NodeRetrying')).toHaveLength(0);
    const failureLines = logLines.filter((line) => line.taskId === taskId && line.msg === 'node failed');
    expect(failureLines).toHaveLength(1);
  });

  it('retries a node after a retryable failure (500) and then succeeds', async () => {
    api.injectFault({ method: 'PATCH', path: '/api/v1/nodes/node-3', status: 500, times: 1 });
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes: ['node-3'] });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.data).toEqual({ succeeded: 1, failed: 0, skipped: 0 });
    expect(eventsOfType(events, 'NodeRetrying').map((event) => event.data)).toEqual([
      expect.objectContaining({ node: 'node-3', attempt: 1 }),
    ]);
    expect(eventsOfType(events, 'NodeStarted').map((event) => event.data.attempt)).toEqual([1, 2]);
    expect(state.nodeStates['node-3']?.attempts).toBe(2);
  });

  it('fails a node whose retryable failures outlast its attempts, saying the cause was transient', async () => {
    api.injectFault({ method: 'PATCH', path: '/api/v1/nodes/node-5', status: 500, times: 3 });
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes: ['node-5', 'node-6'] });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.data).toEqual({ succeeded: 1, failed: 1, skipped: 0 });
    expect(eventsOfType(events, 'NodeRetrying').map((event) => event.data.attempt)).toEqual([1, 2]);
    expect(state.failedNodes).toEqual([expect.objectContaining({ node: 'node-5', retryable: true })]);
  });

  it('drains a node whose eviction is blocked (429) twice, then allowed', async () => {
    api.addNode('pdb-node-1');
    api.addPod({ name: 'guarded', node: 'pdb-node-1', ownerKind: 'ReplicaSet' });
    api.blockEviction('default/guarded', 2);
    const taskId = await submitBatch(runtime, queue, { action: 'drain', nodes: ['pdb-node-1'] });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.data).toEqual({ succeeded: 1, failed: 0, skipped: 0 });
    const evictions = api.requestsTo('POST', '/api/v1/namespaces/default/pods/guarded/eviction');
    expect(evictions.map((request) => request.status)).toEqual([429, 429, 201]);
    expect(api.pods.has('default/guarded')).toBe(false);
  });

  it('fails a node whose eviction stays blocked past the drain timeout', async () => {
    api.addNode('pdb-node-2');
    api.addPod({ name: 'stubborn', node: 'pdb-node-2', ownerKind: 'ReplicaSet' });
    api.blockEviction('default/stubborn', 'forever');
    const taskId = await submitBatch(runtime, queue, {
      action: 'drain',
      nodes: ['pdb-node-2', 'node-4'],
      params: { timeoutSeconds: 1 },
    });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.data).toEqual({ succeeded: 1, failed: 1, skipped: 0 });
    expect(state.failedNodes).toEqual([
      expect.objectContaining({ node: 'pdb-node-2', code: 'DRAIN_TIMEOUT' }),
    ]);
    expect(api.nodes.get('pdb-node-2')?.spec.unschedulable).toBe(true);
  });

  it('fails the whole task when its params are invalid', async () => {
    const taskId = await submitBatch(runtime, queue, {
      action: 'label',
      nodes: ['node-1'],
      params: { set: { 'bad key!': 'x' } },
    });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.type).toBe('TaskFailed');
    expect(state.outcome?.data).toEqual(expect.objectContaining({ code: 'INVALID_NODE_INPUT' }));
    expect(eventsOfType(events, 'NodeStarted')).toHaveLength(0);
  });
});

describe('cancel', () => {
  it('cancels a task cancelled before any worker took it without touching a node', async () => {
    const taskId = uniqueName('task').replaceAll('_', '-');
    await runtime.notifier.append(
      taskId,
      [
        {
          type: 'TaskCreated',
          data: { userId: 'tester', action: 'cordon', nodes: ['node-7', 'node-8'], params: {} },
        },
        { type: 'CancelRequested', data: { by: 'tester' } },
      ],
      { expectedSeq: 0 },
    );
    api.clearRequests();
    await queue.enqueue({ taskId });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.data).toEqual({
      succeeded: 0,
      failed: 0,
      skipped: 0,
      notStarted: ['node-7', 'node-8'],
    });
    expect(eventsOfType(events, 'TaskStarted')).toHaveLength(0);
    expect(api.requestsTo('PATCH', /node-[78]$/)).toHaveLength(0);
  });

  it('stops starting nodes, aborts in-flight drains and ends with TaskCancelled', async () => {
    const blocked = Array.from({ length: 8 }, (_, i) => `cancel-node-${i + 1}`);
    for (const node of blocked) {
      api.addNode(node);
      api.addPod({ name: `${node}-app`, node, ownerKind: 'ReplicaSet' });
      api.blockEviction(`default/${node}-app`, 'forever');
    }
    const taskId = await submitBatch(runtime, queue, {
      action: 'drain',
      nodes: blocked,
      params: { timeoutSeconds: 600 },
      concurrency: 2,
    });
    // Both in-flight drains are waiting on their blocked evictions.
    await waitForEvents(runtime, taskId, (event) => event.type === 'NodeProgress', 2);
    const cancel: NewEvent = { type: 'CancelRequested', data: { by: 'tester', reason: 'test' } };
    await runtime.notifier.append(taskId, [cancel]);
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.type).toBe('TaskCancelled');
    expect(state.outcome?.data).toEqual({
      succeeded: 0,
      failed: 2,
      skipped: 0,
      notStarted: blocked.slice(2),
    });
    expect(state.failedNodes.map((failed) => failed.code)).toEqual(['ABORTED', 'ABORTED']);
    expect(eventsOfType(events, 'NodeStarted').map((event) => event.data.node)).toEqual(blocked.slice(0, 2));
  });
});

describe('resume', () => {
  it('finishes a task another worker left half done, without redoing finished nodes', async () => {
    const batch = ['node-10', 'node-11', 'node-12', 'node-13'];
    const taskId = uniqueName('task').replaceAll('_', '-');
    // The log a worker leaves when it dies: node-10 done, node-11 in flight, the rest not started.
    await runtime.notifier.append(
      taskId,
      [
        {
          type: 'TaskCreated',
          data: { userId: 'tester', action: 'label', nodes: batch, params: { set: { r: 's' } } },
        },
        { type: 'TaskStarted', data: { workerId: 'dead-worker', attempt: 1 } },
        { type: 'NodeStarted', data: { node: 'node-10', attempt: 1 } },
        { type: 'NodeSucceeded', data: { node: 'node-10' } },
        { type: 'NodeStarted', data: { node: 'node-11', attempt: 1 } },
      ],
      { expectedSeq: 0 },
    );
    api.clearRequests();
    await queue.enqueue({ taskId });
    const { state, events } = await waitForEnd(runtime, taskId);
    expectOneTerminal(events);
    expect(state.outcome?.data).toEqual({ succeeded: 4, failed: 0, skipped: 0 });
    expect(eventsOfType(events, 'TaskStarted').map((event) => event.data.attempt)).toEqual([1, 2]);
    expect(api.requestsTo('PATCH', '/api/v1/nodes/node-10')).toHaveLength(0);
    expect(api.requestsTo('PATCH', '/api/v1/nodes/node-11')).not.toHaveLength(0);
    expect(
      eventsOfType(events, 'NodeStarted')
        .filter((event) => event.data.node === 'node-11')
        .map((e) => e.data.attempt),
    ).toEqual([1, 2]);
    expect(eventsOfType(events, 'NodeSucceeded')).toHaveLength(4);
  });

  it('does nothing for a task that already ended', async () => {
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes: ['node-20'] });
    const first = await waitForEnd(runtime, taskId);
    // A second job for the same task (enqueued again after the first job was removed, say).
    const otherQueue = createBatchQueue({
      config: { ...config, queue: { name: uniqueName('batches') } },
      logger,
    });
    usedQueues.push(otherQueue.name);
    const otherWorker = await startWorker({
      config: { ...config, queue: { name: otherQueue.name } },
      logger,
      operator,
      runtime,
    });
    try {
      await otherQueue.enqueue({ taskId });
      await expect
        .poll(
          () =>
            logLines.some(
              (line) => line.taskId === taskId && line.msg === 'task already ended; nothing to do',
            ),
          {
            timeout: 15_000,
          },
        )
        .toBe(true);
      const again = await waitForEnd(runtime, taskId);
      expect(again.events).toEqual(first.events);
    } finally {
      await otherWorker.close();
      await otherQueue.close();
    }
  });
});

describe('shutdown', () => {
  it('hands an unfinished task back; the next worker resumes it', async () => {
    api.addNode('slow-node');
    api.addPod({ name: 'slow-app', node: 'slow-node', ownerKind: 'ReplicaSet' });
    api.blockEviction('default/slow-app', 'forever');
    const batchNodes = ['slow-node', 'node-30', 'node-31'];
    const ownConfig = { ...config, queue: { name: uniqueName('batches') } };
    const ownQueue = createBatchQueue({ config: ownConfig, logger });
    usedQueues.push(ownQueue.name);
    const leaving = await startWorker({ config: ownConfig, logger, operator, runtime });
    let next: WorkerHandle | undefined;
    try {
      const taskId = await submitBatch(runtime, ownQueue, {
        action: 'drain',
        nodes: batchNodes,
        params: { timeoutSeconds: 600 },
        concurrency: 1,
      });
      await waitForEvents(runtime, taskId, (event) => event.type === 'NodeProgress');
      // The drain of slow-node cannot finish within the grace period: it is abandoned and handed back.
      await leaving.close({ graceMs: 200 });
      api.blockEviction('default/slow-app', 0);
      next = await startWorker({ config: ownConfig, logger, operator, runtime });
      const { state, events } = await waitForEnd(runtime, taskId);
      expectOneTerminal(events);
      expect(state.outcome?.data).toEqual({ succeeded: 3, failed: 0, skipped: 0 });
      expect(eventsOfType(events, 'TaskStarted').map((event) => event.data.workerId)).toEqual([
        leaving.id,
        next.id,
      ]);
      const handedBack = logLines.filter((line) => line.taskId === taskId && line.msg === 'task handed back');
      expect(handedBack).toHaveLength(1);
    } finally {
      await leaving.close();
      await next?.close();
      await ownQueue.close();
    }
  });
});

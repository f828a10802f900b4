import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DrainTimeoutError,
  InvalidNodeInputError,
  KubeOperationError,
  OperationAbortedError,
} from './errors.js';
import { KubernetesNodeOperator, type KubernetesNodeOperatorOptions } from './kubernetes-node-operator.js';
import type { DrainProgress } from './node-operator.js';
import { instantClock, startFakeKubeApi, type FakeKubeApi, type RecordedRequest } from './testing/index.js';

const MERGE = 'application/merge-patch+json';

let fake: FakeKubeApi;

beforeEach(async () => {
  fake = await startFakeKubeApi({ nodes: ['node-1', 'node-2'] });
});

afterEach(async () => {
  await fake.close();
});

function operator(options: Partial<KubernetesNodeOperatorOptions> = {}) {
  return new KubernetesNodeOperator({
    kubeConfig: fake.kubeConfig(),
    evictionBackoff: { initialMs: 5, maxMs: 20 },
    ...options,
  });
}

/** The requests without the fields every test would repeat. */
function calls(requests: readonly RecordedRequest[] = fake.requests) {
  return requests.map(({ method, path, query, contentType, body, status }) => ({
    method,
    path,
    ...(Object.keys(query).length > 0 ? { query } : {}),
    ...(contentType ? { contentType } : {}),
    ...(body !== undefined ? { body } : {}),
    status,
  }));
}

function patch(node: string, body: unknown, status = 200) {
  return {
    method: 'PATCH',
    path: `/api/v1/nodes/${node}`,
    query: { fieldManager: 'nodebatch' },
    contentType: MERGE,
    body,
    status,
  };
}

function getNode(node: string, status = 200) {
  return { method: 'GET', path: `/api/v1/nodes/${node}`, status };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the operation to fail');
    },
    (error: unknown) => error,
  );
}

describe('cordon, uncordon, labels', () => {
  it('cordons and uncordons with merge patches of spec.unschedulable, saying when it was cordoned already', async () => {
    const kube = operator();
    expect(await kube.cordon('node-1')).toEqual({ alreadyCordoned: false });
    expect(fake.nodes.get('node-1')!.spec.unschedulable).toBe(true);
    expect(await kube.cordon('node-1')).toEqual({ alreadyCordoned: true });
    await kube.uncordon('node-1');
    expect(fake.nodes.get('node-1')!.spec).not.toHaveProperty('unschedulable');
    const removeReason = {
      'nodebatch.io/cordon-reason': null,
      'nodebatch.io/cordoned-by': null,
      'nodebatch.io/cordoned-at': null,
    };
    expect(calls()).toEqual([
      getNode('node-1'),
      patch('node-1', { spec: { unschedulable: true } }),
      getNode('node-1'),
      patch('node-1', { spec: { unschedulable: true } }),
      patch('node-1', { spec: { unschedulable: null }, metadata: { annotations: removeReason } }),
    ]);
    expect(fake.requests.every((request) => request.authenticated)).toBe(true);
  });

  it('sets and removes labels with merge patches of metadata.labels', async () => {
    const kube = operator();
    await kube.addLabels('node-1', { 'example.com/zone': 'a', tier: 'gold' });
    await kube.removeLabels('node-1', ['tier', 'not-there']);
    expect(fake.nodes.get('node-1')!.metadata.labels).toEqual({
      'kubernetes.io/hostname': 'node-1',
      'example.com/zone': 'a',
    });
    expect(calls()).toEqual([
      patch('node-1', { metadata: { labels: { 'example.com/zone': 'a', tier: 'gold' } } }),
      patch('node-1', { metadata: { labels: { tier: null, 'not-there': null } } }),
    ]);
  });

  it('answers a missing node with NODE_NOT_FOUND, not retryable, after one request', async () => {
    const error = await failure(operator().cordon('node-9'));
    expect(error).toBeInstanceOf(KubeOperationError);
    expect(error).toMatchObject({
      code: 'NODE_NOT_FOUND',
      statusCode: 404,
      retryable: false,
      node: 'node-9',
      operation: 'cordon',
    });
    expect((error as Error).message).toContain('nodes "node-9" not found');
    expect(calls()).toEqual([getNode('node-9', 404)]);
  });

  it('reports a 500 as retryable without retrying it itself (the worker retries nodes)', async () => {
    fake.injectFault({
      method: 'PATCH',
      path: '/api/v1/nodes/node-1',
      status: 500,
      message: 'etcdserver: request timed out',
    });
    const error = await failure(operator().addLabels('node-1', { a: 'b' }));
    expect(error).toMatchObject({ code: 'KUBE_SERVER_ERROR', statusCode: 500, retryable: true });
    expect((error as Error).message).toContain('etcdserver: request timed out');
    expect(fake.requests).toHaveLength(1);
    expect(fake.nodes.get('node-1')!.metadata.labels).not.toHaveProperty('a');
  });

  it('reports an unreachable API server as retryable, naming the server', async () => {
    const gone = await startFakeKubeApi({ nodes: ['node-1'] });
    const kube = new KubernetesNodeOperator({ kubeConfig: gone.kubeConfig() });
    await gone.close();
    const error = await failure(kube.cordon('node-1'));
    expect(error).toMatchObject({ code: 'KUBE_UNREACHABLE', retryable: true, statusCode: undefined });
    expect((error as Error).message).toContain(gone.url);
  });

  it('reports a kubeconfig client-node cannot use as not retryable, without sending anything', async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'c', server: fake.url, skipTLSVerify: false }],
      users: [{ name: 'u', token: 'x' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    const error = await failure(new KubernetesNodeOperator({ kubeConfig }).cordon('node-1'));
    expect(error).toMatchObject({ code: 'KUBE_REQUEST_FAILED', retryable: false });
    expect((error as Error).message).toContain('skipTLSVerify');
    expect(fake.requests).toEqual([]);
  });

  it('names the RBAC rules it needs when forbidden', async () => {
    fake.injectFault({
      status: 403,
      message: 'nodes "node-1" is forbidden: User "system:serviceaccount:x:y" cannot patch',
    });
    const error = await failure(operator().cordon('node-1'));
    expect(error).toMatchObject({ code: 'FORBIDDEN', statusCode: 403, retryable: false });
    expect((error as Error).message).toContain('create pods/eviction');
  });

  it('refuses bad input before sending anything', async () => {
    const kube = operator();
    await expect(kube.cordon('Node_1')).rejects.toBeInstanceOf(InvalidNodeInputError);
    await expect(kube.addLabels('node-1', { 'bad key': 'v' })).rejects.toThrow(/labels\["bad key"\]/);
    await expect(kube.removeLabels('node-1', ['a/b/c'])).rejects.toBeInstanceOf(InvalidNodeInputError);
    await expect(kube.addTaints('node-1', [{ key: 'k', effect: 'NoRun' as 'NoSchedule' }])).rejects.toThrow(
      /taints\[0\]\.effect/,
    );
    await expect(kube.removeTaints('node-1', [{ key: '' }])).rejects.toBeInstanceOf(InvalidNodeInputError);
    await expect(kube.copyTaints('node-1', 'node 2')).rejects.toThrow(/toNode/);
    await expect(kube.drain('-node')).rejects.toBeInstanceOf(InvalidNodeInputError);
    await expect(kube.drain('node-1', { gracePeriodSeconds: -1 })).rejects.toBeInstanceOf(
      InvalidNodeInputError,
    );
    expect(fake.requests).toEqual([]);
  });

  it('cancels a request in flight when aborted', async () => {
    fake.setBehaviour({ responseDelayMs: 60_000 });
    const controller = new AbortController();
    const cordoned = failure(operator().cordon('node-1', { signal: controller.signal }));
    await vi.waitFor(() => expect(fake.requests).toHaveLength(1), { timeout: 10_000 });
    controller.abort();
    expect(await cordoned).toBeInstanceOf(OperationAbortedError);
  });

  it('stops before sending when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(operator().cordon('node-1', { signal: controller.signal })).rejects.toBeInstanceOf(
      OperationAbortedError,
    );
    expect(fake.requests).toEqual([]);
  });
});

describe('taints', () => {
  it('adds taints with a read and a patch conditioned on resourceVersion, keeping existing ones', async () => {
    fake.addNode({
      name: 'node-3',
      taints: [{ key: 'example.com/old', effect: 'NoExecute', timeAdded: '2024-01-02T03:04:05Z' }],
    });
    const version = fake.nodes.get('node-3')!.metadata.resourceVersion;
    await operator().addTaints('node-3', [
      { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
      { key: 'example.com/old', value: 'v2', effect: 'PreferNoSchedule' },
    ]);
    const taints = [
      { key: 'example.com/old', effect: 'NoExecute', timeAdded: '2024-01-02T03:04:05Z' },
      { key: 'dedicated', effect: 'NoSchedule', value: 'gpu' },
      { key: 'example.com/old', effect: 'PreferNoSchedule', value: 'v2' },
    ];
    expect(calls()).toEqual([
      getNode('node-3'),
      patch('node-3', { metadata: { resourceVersion: version }, spec: { taints } }),
    ]);
    expect(fake.nodes.get('node-3')!.spec.taints).toEqual(taints);
  });

  it('replaces the value of a taint with the same key and effect', async () => {
    const kube = operator();
    await kube.addTaints('node-1', [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }]);
    await kube.addTaints('node-1', [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }]);
    expect(fake.nodes.get('node-1')!.spec.taints).toEqual([
      { key: 'dedicated', effect: 'NoSchedule', value: 'db' },
    ]);
  });

  it('removes taints by key and effect or by key, and sends no patch when nothing changes', async () => {
    fake.addNode({
      name: 'node-3',
      taints: [
        { key: 'a', effect: 'NoSchedule' },
        { key: 'a', effect: 'NoExecute' },
        { key: 'b', value: '1', effect: 'NoSchedule' },
      ],
    });
    const kube = operator();
    await kube.removeTaints('node-3', [{ key: 'a', effect: 'NoExecute' }]);
    expect(fake.nodes.get('node-3')!.spec.taints).toEqual([
      { key: 'a', effect: 'NoSchedule' },
      { key: 'b', value: '1', effect: 'NoSchedule' },
    ]);
    await kube.removeTaints('node-3', [{ key: 'a' }, { key: 'b' }]);
    expect(fake.nodes.get('node-3')!.spec).not.toHaveProperty('taints');
    fake.clearRequests();
    await kube.removeTaints('node-3', [{ key: 'gone' }]);
    expect(calls()).toEqual([getNode('node-3')]);
  });

  it('copies taints from one node to another', async () => {
    fake.addNode({ name: 'template', taints: [{ key: 'pool', value: 'gpu', effect: 'NoSchedule' }] });
    fake.addNode({ name: 'target', taints: [{ key: 'keep', effect: 'NoExecute' }] });
    const version = fake.nodes.get('target')!.metadata.resourceVersion;
    await operator().copyTaints('template', 'target');
    expect(calls()).toEqual([
      getNode('template'),
      getNode('target'),
      patch('target', {
        metadata: { resourceVersion: version },
        spec: {
          taints: [
            { key: 'keep', effect: 'NoExecute' },
            { key: 'pool', effect: 'NoSchedule', value: 'gpu' },
          ],
        },
      }),
    ]);
  });

  it('answers a missing source node of copyTaints with NOT_FOUND naming it', async () => {
    const error = await failure(operator().copyTaints('nowhere', 'node-1'));
    expect(error).toMatchObject({ statusCode: 404, retryable: false });
    expect((error as Error).message).toContain('nowhere');
  });

  it('re-reads and retries when a concurrent change answers 409', async () => {
    fake.changeNodeBeforeNextPatch('node-1', 2);
    await operator().addTaints('node-1', [{ key: 'k', effect: 'NoSchedule' }]);
    expect(calls().map(({ method, status }) => `${method} ${status}`)).toEqual([
      'GET 200',
      'PATCH 409',
      'GET 200',
      'PATCH 409',
      'GET 200',
      'PATCH 200',
    ]);
    const node = fake.nodes.get('node-1')!;
    expect(node.spec.taints).toEqual([{ key: 'k', effect: 'NoSchedule' }]);
    // The other writer's change survived: the patch was built from a fresh read.
    expect(node.metadata.annotations).toHaveProperty('example.com/touched-by');
  });

  it('gives up after its conflict retries with a retryable CONFLICT', async () => {
    fake.changeNodeBeforeNextPatch('node-1', 10);
    const error = await failure(
      operator({ conflictRetries: 2 }).addTaints('node-1', [{ key: 'k', effect: 'NoSchedule' }]),
    );
    expect(error).toMatchObject({ code: 'CONFLICT', statusCode: 409, retryable: true });
    expect(fake.requestsTo('PATCH', '/api/v1/nodes/node-1')).toHaveLength(3);
  });

  it('answers a missing node with NODE_NOT_FOUND at the read', async () => {
    const error = await failure(operator().addTaints('node-9', [{ key: 'k', effect: 'NoSchedule' }]));
    expect(error).toMatchObject({ code: 'NODE_NOT_FOUND', statusCode: 404 });
    expect(calls()).toEqual([getNode('node-9', 404)]);
  });
});

describe('drain', () => {
  beforeEach(() => {
    fake.addPod({ namespace: 'shop', name: 'web-1', node: 'node-1', ownerKind: 'ReplicaSet' });
    fake.addPod({ namespace: 'shop', name: 'web-2', node: 'node-1', ownerKind: 'ReplicaSet' });
    fake.addPod({ namespace: 'shop', name: 'debug', node: 'node-1', ownerKind: 'Job' });
    fake.addPod({ namespace: 'kube-system', name: 'proxy-x1', node: 'node-1', ownerKind: 'DaemonSet' });
    fake.addPod({ namespace: 'kube-system', name: 'etcd-node-1', node: 'node-1', mirror: true });
    fake.addPod({ namespace: 'shop', name: 'web-3', node: 'node-2', ownerKind: 'ReplicaSet' });
  });

  function evictionsOf(pod: string) {
    const [namespace, name] = pod.split('/');
    return fake.requestsTo('POST', `/api/v1/namespaces/${namespace}/pods/${name}/eviction`);
  }

  it('cordons, lists the pods on the node, evicts all but DaemonSet and mirror pods, reports each', async () => {
    const progress: DrainProgress[] = [];
    const result = await operator().drain('node-1', {
      onProgress: (p) => progress.push(p),
      gracePeriodSeconds: 30,
    });

    expect(result.evicted.sort()).toEqual(['shop/debug', 'shop/web-1', 'shop/web-2']);
    expect(result.skipped).toEqual([
      { pod: 'kube-system/proxy-x1', reason: 'daemonset' },
      { pod: 'kube-system/etcd-node-1', reason: 'mirror' },
    ]);
    const [cordon, list, daemonSet, ...rest] = calls();
    expect(cordon).toEqual(patch('node-1', { spec: { unschedulable: true } }));
    expect(list).toEqual({
      method: 'GET',
      path: '/api/v1/pods',
      query: { fieldSelector: 'spec.nodeName=node-1', limit: '500' },
      status: 200,
    });
    // The DaemonSet is looked up: an orphaned DaemonSet pod would count as having no controller.
    expect(daemonSet).toEqual({
      method: 'GET',
      path: '/apis/apps/v1/namespaces/kube-system/daemonsets/proxy-x1-owner',
      status: 200,
    });
    const evictions = rest.filter((request) => request.method === 'POST');
    // Then each evicted pod is read until it is gone (404).
    expect(
      rest
        .slice(evictions.length)
        .map((request) => `${request.method} ${request.path} ${request.status}`)
        .sort(),
    ).toEqual(['debug', 'web-1', 'web-2'].map((name) => `GET /api/v1/namespaces/shop/pods/${name} 404`));
    expect(evictions.sort((a, b) => a.path.localeCompare(b.path))).toEqual(
      ['debug', 'web-1', 'web-2'].map((name) => ({
        method: 'POST',
        path: `/api/v1/namespaces/shop/pods/${name}/eviction`,
        contentType: 'application/json',
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name, namespace: 'shop' },
          deleteOptions: { gracePeriodSeconds: 30 },
        },
        status: 201,
      })),
    );
    expect(progress.map(({ done, total }) => `${done}/${total}`)).toEqual([
      '0/3',
      '1/3',
      '2/3',
      '3/3',
      '3/3',
    ]);
    expect(progress.at(-1)!.message).toBe('all 3 removed pod(s) are gone');
    expect(progress[0]!.message).toBe('3 pod(s) to evict; skipped 1 DaemonSet and 1 mirror pod(s)');
    expect([...fake.pods.keys()].sort()).toEqual([
      'kube-system/etcd-node-1',
      'kube-system/proxy-x1',
      'shop/web-3',
    ]);
    expect(fake.nodes.get('node-1')!.spec.unschedulable).toBe(true);
  });

  it('counts an eviction answered 404 as done (the pod was already gone)', async () => {
    fake.injectFault({ method: 'POST', path: '/api/v1/namespaces/shop/pods/web-1/eviction', status: 404 });
    const result = await operator().drain('node-1');
    expect(result.evicted).toContain('shop/web-1');
    expect(evictionsOf('shop/web-1').map((request) => request.status)).toEqual([404]);
  });

  it('retries an eviction blocked by a PodDisruptionBudget (429) until it is allowed', async () => {
    fake.blockEviction('shop/web-2', 3);
    const progress: DrainProgress[] = [];
    const result = await operator().drain('node-1', { onProgress: (p) => progress.push(p) });
    expect(result.evicted).toContain('shop/web-2');
    expect(evictionsOf('shop/web-2').map((request) => request.status)).toEqual([429, 429, 429, 201]);
    expect(progress.at(-1)).toMatchObject({ done: 3, total: 3 });
    // Each wait is visible to users, naming the pod and the budget.
    expect(
      progress
        .filter((p) => p.message.includes('shop/web-2 refused'))
        .map((p) => p.message.replace(/\d+ s$/, 'N s')),
    ).toEqual(
      Array(3).fill(
        'eviction of pod shop/web-2 refused: disruption budget web-2-pdb does not allow it now; retrying in N s',
      ),
    );
  });

  it('times out when an eviction stays blocked, naming the pods left, node still cordoned', async () => {
    fake.blockEviction('shop/web-2', 'forever');
    const clock = instantClock();
    const kube = operator({ clock, evictionBackoff: { initialMs: 100, maxMs: 400 }, random: () => 1 });
    const error = await failure(kube.drain('node-1', { timeoutMs: 1_000 }));
    expect(error).toBeInstanceOf(DrainTimeoutError);
    expect(error).toMatchObject({
      code: 'DRAIN_TIMEOUT',
      retryable: false,
      remainingPods: ['shop/web-2'],
      timeoutCause: 'disruption-budget',
    });
    expect((error as Error).message).toBe(
      'drain of node "node-1" did not complete within 1000 ms: a PodDisruptionBudget still refused the eviction of shop/web-2 (budget web-2-pdb); the node stays cordoned',
    );
    // 100 + 200 + 400 + 300 (cut at the deadline) ms of backoff, then one last try at the deadline.
    expect(clock.sleeps).toEqual([100, 200, 400, 300]);
    expect(evictionsOf('shop/web-2').map((request) => request.status)).toEqual([429, 429, 429, 429, 429]);
    expect(fake.pods.has('shop/web-2')).toBe(true);
    expect(fake.nodes.get('node-1')!.spec.unschedulable).toBe(true);
  });

  it('retries an eviction answered 500 a few times, then fails retryable', async () => {
    fake.injectFault({
      method: 'POST',
      path: '/api/v1/namespaces/shop/pods/web-1/eviction',
      status: 500,
      times: 2,
    });
    await operator().drain('node-1');
    expect(evictionsOf('shop/web-1').map((request) => request.status)).toEqual([500, 500, 201]);

    fake.addPod({ namespace: 'shop', name: 'web-9', node: 'node-1', ownerKind: 'ReplicaSet' });
    fake.injectFault({
      method: 'POST',
      path: '/api/v1/namespaces/shop/pods/web-9/eviction',
      status: 503,
      times: Infinity,
    });
    const error = await failure(operator({ evictionServerErrorRetries: 2 }).drain('node-1'));
    expect(error).toMatchObject({
      code: 'KUBE_SERVER_ERROR',
      statusCode: 503,
      retryable: true,
      operation: 'drain',
    });
    expect((error as Error).message).toContain('shop/web-9');
    expect(evictionsOf('shop/web-9')).toHaveLength(3);
  });

  it('fails at once on a missing node, before listing pods', async () => {
    const error = await failure(operator().drain('node-9'));
    expect(error).toMatchObject({ code: 'NODE_NOT_FOUND', statusCode: 404, retryable: false });
    expect(calls()).toEqual([patch('node-9', { spec: { unschedulable: true } }, 404)]);
  });

  it('stops evicting when aborted mid-drain', async () => {
    const controller = new AbortController();
    const error = await failure(
      operator({ evictionConcurrency: 1 }).drain('node-1', {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.done === 1) controller.abort();
        },
      }),
    );
    expect(error).toBeInstanceOf(OperationAbortedError);
    expect(fake.requestsTo('POST', /\/eviction$/)).toHaveLength(1);
    expect([...fake.pods.values()].filter((pod) => pod.spec.nodeName === 'node-1')).toHaveLength(4);
  });

  it('stops waiting out a blocked eviction when aborted', async () => {
    fake.blockEviction('shop/web-1', 'forever');
    const controller = new AbortController();
    const drained = failure(
      operator({ evictionBackoff: { initialMs: 60_000, maxMs: 60_000 } }).drain('node-1', {
        signal: controller.signal,
      }),
    );
    await vi.waitFor(() => expect(evictionsOf('shop/web-1')).toHaveLength(1), { timeout: 10_000 });
    controller.abort();
    expect(await drained).toBeInstanceOf(OperationAbortedError);
  });
});

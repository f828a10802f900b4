import { afterEach, describe, expect, it } from 'vitest';
import { DrainRefusedError, DrainTimeoutError, SourceNodeNotFoundError } from './errors.js';
import { KubernetesNodeOperator, type KubernetesNodeOperatorOptions } from './kubernetes-node-operator.js';
import type { DrainProgress } from './node-operator.js';
import {
  instantClock,
  startFakeKubeApi,
  type FakeKubeApi,
  type FakeKubeApiOptions,
} from './testing/index.js';

/*
 * Drain as kubectl does it, against the local Kubernetes API server: gates, budgets, terminating
 * namespaces, waiting for deletion, dry run, pod selector, delete instead of evict.
 */

let fake: FakeKubeApi | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function setUp(options: FakeKubeApiOptions, tuning: Partial<KubernetesNodeOperatorOptions> = {}) {
  const clock = instantClock(Date.now());
  fake = await startFakeKubeApi({ now: clock.now, ...options });
  const kube = new KubernetesNodeOperator({
    kubeConfig: fake.kubeConfig(),
    clock,
    random: () => 1,
    evictionBackoff: { initialMs: 1000, maxMs: 1000 },
    deletionPollMs: 1000,
    ...tuning,
  });
  const progress: DrainProgress[] = [];
  return { fake, kube, clock, progress, onProgress: (p: DrainProgress) => progress.push(p) };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the drain to fail');
    },
    (error: unknown) => error,
  );
}

const evictions = (api: FakeKubeApi) => api.requestsTo('POST', /\/eviction$/);

describe('drain gates (kubectl drain without --force / --delete-emptydir-data)', () => {
  it('with no options, refuses a node with a bare pod and an emptyDir pod: evicts nothing and names both', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'shop', name: 'web', node: 'node-1', ownerKind: 'ReplicaSet' },
        { namespace: 'shop', name: 'bare-a', node: 'node-1' },
        { namespace: 'ops', name: 'bare-b', node: 'node-1' },
        { namespace: 'shop', name: 'cache', node: 'node-1', ownerKind: 'ReplicaSet', emptyDir: true },
      ],
    });
    const error = await failure(kube.drain('node-1'));
    expect(error).toBeInstanceOf(DrainRefusedError);
    expect(error).toMatchObject({ code: 'DRAIN_REFUSED', retryable: false });
    expect((error as Error).message).toBe(
      'drain of node "node-1" refused: ' +
        'cannot delete Pods with local storage (use deleteEmptyDirData to override): shop/cache; ' +
        'cannot delete Pods that declare no controller (use force to override): shop/bare-a, ops/bare-b; ' +
        'no pod was evicted and the node stays cordoned',
    );
    expect(evictions(fake)).toEqual([]);
    expect(fake.pods.size).toBe(4);
    expect(fake.nodes.get('node-1')!.spec.unschedulable).toBe(true);
  });

  it('counts an orphaned DaemonSet pod as declaring no controller, leaves a live DaemonSet pod and mirror pods', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'kube-system', name: 'agent', node: 'node-1', ownerKind: 'DaemonSet' },
        { namespace: 'kube-system', name: 'ghost', node: 'node-1', ownerKind: 'DaemonSet', orphaned: true },
        { namespace: 'kube-system', name: 'etcd-node-1', node: 'node-1', mirror: true },
      ],
    });
    const error = await failure(kube.drain('node-1'));
    expect((error as Error).message).toContain(
      'cannot delete Pods that declare no controller (use force to override): kube-system/ghost;',
    );
    expect(evictions(fake)).toEqual([]);

    const result = await kube.drain('node-1', { force: true });
    expect(result.evicted).toEqual(['kube-system/ghost']);
    expect(result.skipped).toEqual([
      { pod: 'kube-system/agent', reason: 'daemonset' },
      { pod: 'kube-system/etcd-node-1', reason: 'mirror' },
    ]);
  });

  it('removes finished pods (Succeeded, Failed) without the gates', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'jobs', name: 'done-bare', node: 'node-1', phase: 'Succeeded' },
        { namespace: 'jobs', name: 'failed-scratch', node: 'node-1', phase: 'Failed', emptyDir: true },
      ],
    });
    const result = await kube.drain('node-1');
    expect(result.evicted.sort()).toEqual(['jobs/done-bare', 'jobs/failed-scratch']);
    expect(fake.pods.size).toBe(0);
  });

  it('with force and deleteEmptyDirData, evicts the bare and emptyDir pods', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'shop', name: 'bare', node: 'node-1' },
        { namespace: 'shop', name: 'cache', node: 'node-1', ownerKind: 'ReplicaSet', emptyDir: true },
      ],
    });
    const result = await kube.drain('node-1', { force: true, deleteEmptyDirData: true });
    expect(result.evicted.sort()).toEqual(['shop/bare', 'shop/cache']);
    expect(evictions(fake).map((request) => request.status)).toEqual([201, 201]);
  });
});

describe('disruption budgets and terminating namespaces', () => {
  it('retries a budget refusal (429) until allowed, each wait visible with the pod and the budget', async () => {
    const { fake, kube, clock, progress, onProgress } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'shop', name: 'web-1', node: 'node-1', ownerKind: 'ReplicaSet', labels: { app: 'web' } },
      ],
    });
    fake.addDisruptionBudget({ name: 'web-pdb', namespace: 'shop', selector: 'app=web', refusals: 2 });
    const result = await kube.drain('node-1', { onProgress });
    expect(result.evicted).toEqual(['shop/web-1']);
    expect(evictions(fake).map((request) => request.status)).toEqual([429, 429, 201]);
    expect(progress.map((p) => p.message)).toEqual([
      '1 pod(s) to evict; skipped 0 DaemonSet and 0 mirror pod(s)',
      'eviction of pod shop/web-1 refused: disruption budget web-pdb does not allow it now; retrying in 1 s',
      'eviction of pod shop/web-1 refused: disruption budget web-pdb does not allow it now; retrying in 1 s',
      'evicted pod shop/web-1',
      'all 1 removed pod(s) are gone',
    ]);
    expect(clock.sleeps).toEqual([1000, 1000]);
  });

  it('times out naming the pods a budget still blocks', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'shop', name: 'db-0', node: 'node-1', ownerKind: 'StatefulSet', labels: { app: 'db' } },
      ],
    });
    fake.addDisruptionBudget({ name: 'db-pdb', namespace: 'shop', selector: 'app=db', refusals: 'forever' });
    const error = await failure(kube.drain('node-1', { timeoutMs: 3000 }));
    expect(error).toBeInstanceOf(DrainTimeoutError);
    expect(error).toMatchObject({ timeoutCause: 'disruption-budget', remainingPods: ['shop/db-0'] });
    expect((error as Error).message).toBe(
      'drain of node "node-1" did not complete within 3000 ms: a PodDisruptionBudget still refused the eviction of shop/db-0 (budget db-pdb); the node stays cordoned',
    );
    expect(fake.pods.has('shop/db-0')).toBe(true);
  });

  it('handles a 403 in a terminating namespace as kubectl does: waits for the pod to go with its namespace', async () => {
    const { fake, kube, progress, onProgress } = await setUp({
      nodes: ['node-1'],
      pods: [{ namespace: 'doomed', name: 'app', node: 'node-1', ownerKind: 'ReplicaSet' }],
      behaviour: { terminationReads: 2 },
    });
    fake.terminateNamespace('doomed');
    const result = await kube.drain('node-1', { onProgress });
    expect(result.evicted).toEqual(['doomed/app']);
    expect(evictions(fake).map((request) => request.status)).toEqual([403]);
    expect(
      fake
        .requestsTo('GET', '/api/v1/namespaces/doomed/pods/app')
        .map((r) => r.status)
        .at(-1),
    ).toBe(404);
    expect(progress.at(-1)!.message).toBe('all 1 removed pod(s) are gone');
  });

  it('retries a 403 in a terminating namespace while the pod is not deleted yet, saying so', async () => {
    const { fake, kube, progress, onProgress } = await setUp({
      nodes: ['node-1'],
      pods: [{ namespace: 'doomed', name: 'app', node: 'node-1', ownerKind: 'ReplicaSet' }],
    });
    fake.terminateNamespace('doomed', { markPodsDeleted: false });
    const drained = kube.drain('node-1', {
      onProgress: (p) => {
        onProgress(p);
        // The namespace controller gets to the pod after the first refusal.
        if (p.message.includes('terminating namespace')) fake.deletePod('doomed/app');
      },
    });
    expect((await drained).evicted).toEqual(['doomed/app']);
    expect(progress[1]!.message).toBe(
      'pod doomed/app is in terminating namespace "doomed"; waiting until it is deleted with it; retrying in 1 s',
    );
  });
});

describe('waiting for deletion', () => {
  it('reports a node drained only once its evicted pods answer 404, polling each second', async () => {
    const { fake, kube, clock, progress, onProgress } = await setUp({
      nodes: ['node-1'],
      pods: [{ namespace: 'shop', name: 'web-1', node: 'node-1', ownerKind: 'ReplicaSet' }],
      behaviour: { terminationReads: 3 },
    });
    await kube.drain('node-1', { onProgress });
    const reads = fake.requestsTo('GET', '/api/v1/namespaces/shop/pods/web-1');
    expect(reads.map((request) => request.status)).toEqual([200, 200, 200, 404]);
    // The reads are a second apart on the virtual clock, and the 404 is the drain's last request.
    expect(reads.map((request) => request.at - reads[0]!.at)).toEqual([0, 1000, 2000, 3000]);
    expect(fake.requests.at(-1)).toBe(reads.at(-1));
    expect(clock.sleeps).toEqual([1000, 1000, 1000]);
    expect(progress.map((p) => p.message).slice(2)).toEqual([
      'waiting for 1 pod(s) to terminate: shop/web-1',
      'all 1 removed pod(s) are gone',
    ]);
  });

  it('counts a pod of the same name with a new UID as gone (a StatefulSet recreated it)', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1', 'node-2'],
      pods: [
        { namespace: 'db', name: 'db-0', node: 'node-1', ownerKind: 'StatefulSet', recreateOn: 'node-2' },
      ],
      behaviour: { terminationReads: 1 },
    });
    const before = fake.pods.get('db/db-0')!.metadata.uid;
    await kube.drain('node-1');
    expect(fake.requestsTo('GET', '/api/v1/namespaces/db/pods/db-0').map((r) => r.status)).toEqual([
      200, 200,
    ]);
    expect(fake.pods.get('db/db-0')!.metadata.uid).not.toBe(before);
  });

  it('times out naming pods still terminating (slow termination)', async () => {
    const { kube } = await setUp({
      nodes: ['node-1'],
      pods: [{ namespace: 'shop', name: 'slow', node: 'node-1', ownerKind: 'ReplicaSet' }],
      behaviour: { deletePodsOnEviction: false },
    });
    const error = await failure(kube.drain('node-1', { timeoutMs: 2500 }));
    expect(error).toMatchObject({ timeoutCause: 'slow-termination', terminatingPods: ['shop/slow'] });
    expect((error as Error).message).toBe(
      'drain of node "node-1" did not complete within 2500 ms: evicted pods were still terminating (slow termination): shop/slow; the node stays cordoned',
    );
  });

  it('stops waiting for pods deleted longer ago than skipWaitForDeleteTimeoutSeconds, and skips such pods', async () => {
    const { fake, kube, clock, progress, onProgress } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'shop', name: 'stuck', node: 'node-1', ownerKind: 'ReplicaSet' },
        { namespace: 'shop', name: 'long-gone', node: 'node-1', ownerKind: 'ReplicaSet' },
      ],
      behaviour: { deletePodsOnEviction: false },
    });
    // A pod whose deletion started an hour ago (the kubelet of a NotReady node never confirmed it).
    fake.pods.get('shop/long-gone')!.metadata.deletionTimestamp = new Date(
      clock.now() - 3_600_000,
    ).toISOString();
    const start = clock.now();
    const result = await kube.drain('node-1', { onProgress, skipWaitForDeleteTimeoutSeconds: 5 });
    expect(result.evicted).toEqual(['shop/stuck']);
    expect(result.skipped).toEqual([
      { pod: 'shop/long-gone', reason: 'deletion-timed-out' },
      { pod: 'shop/stuck', reason: 'deletion-timed-out' },
    ]);
    expect(evictions(fake).map((request) => request.path)).toEqual([
      '/api/v1/namespaces/shop/pods/stuck/eviction',
    ]);
    expect(clock.now() - start).toBeGreaterThanOrEqual(5000);
    expect(clock.now() - start).toBeLessThanOrEqual(7000);
    expect(progress.map((p) => p.message)).toContain(
      'pod shop/stuck was deleted more than 5 s ago and is still there; not waiting for it (skipWaitForDeleteTimeoutSeconds)',
    );
  });
});

describe('options', () => {
  it('dryRun: sends dryRun=All, reports what would be evicted and what blocks it, and changes nothing', async () => {
    const { fake, kube, progress, onProgress } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'shop', name: 'web-1', node: 'node-1', ownerKind: 'ReplicaSet' },
        { namespace: 'shop', name: 'db-0', node: 'node-1', ownerKind: 'StatefulSet', labels: { app: 'db' } },
        { namespace: 'shop', name: 'bare', node: 'node-1' },
      ],
    });
    fake.addDisruptionBudget({ name: 'db-pdb', namespace: 'shop', selector: 'app=db', refusals: 'forever' });
    const nodeBefore = structuredClone(fake.nodes.get('node-1'));
    const result = await kube.drain('node-1', { dryRun: true, onProgress });
    expect(result).toEqual({
      evicted: ['shop/web-1'],
      skipped: [],
      dryRun: true,
      deleted: false,
      blocked: [
        { pod: 'shop/bare', reason: 'cannot delete Pods that declare no controller (use force to override)' },
        { pod: 'shop/db-0', reason: 'a disruption budget (db-pdb) refuses its eviction' },
      ],
    });
    expect(fake.nodes.get('node-1')).toEqual(nodeBefore);
    expect(fake.pods.size).toBe(3);
    expect(fake.requestsTo('PATCH', '/api/v1/nodes/node-1')[0]!.query).toMatchObject({ dryRun: 'All' });
    for (const request of evictions(fake)) {
      expect(request.body).toMatchObject({ deleteOptions: { dryRun: ['All'] } });
    }
    // Nothing was deleted, so nothing is waited for.
    expect(fake.requestsTo('GET', /\/namespaces\/.*\/pods\//)).toEqual([]);
    expect(progress[0]!.message).toBe(
      '(dry run) 2 pod(s) to evict; skipped 0 DaemonSet and 0 mirror pod(s); would be refused: cannot delete Pods that declare no controller (use force to override): shop/bare',
    );
  });

  it('podSelector: lists and gates only the matching pods', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1'],
      pods: [
        {
          namespace: 'shop',
          name: 'web-1',
          node: 'node-1',
          ownerKind: 'ReplicaSet',
          labels: { tier: 'web' },
        },
        { namespace: 'shop', name: 'bare', node: 'node-1', labels: { tier: 'debug' } },
      ],
    });
    const result = await kube.drain('node-1', { podSelector: 'tier in (web, api)' });
    expect(result.evicted).toEqual(['shop/web-1']);
    expect(fake.requestsTo('GET', '/api/v1/pods')[0]!.query).toMatchObject({
      labelSelector: 'tier in (web, api)',
      fieldSelector: 'spec.nodeName=node-1',
    });
    expect(fake.pods.has('shop/bare')).toBe(true);
    await expect(kube.drain('node-1', { podSelector: 'tier in web' })).rejects.toThrow(
      /podSelector: invalid label selector/,
    );
  });

  it('disableEviction: deletes the pods (with the grace period) instead of evicting, bypassing budgets', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1'],
      pods: [
        { namespace: 'shop', name: 'db-0', node: 'node-1', ownerKind: 'StatefulSet', labels: { app: 'db' } },
      ],
      behaviour: { terminationReads: 1 },
    });
    fake.addDisruptionBudget({ name: 'db-pdb', namespace: 'shop', selector: 'app=db', refusals: 'forever' });
    const result = await kube.drain('node-1', { disableEviction: true, gracePeriodSeconds: 7 });
    expect(result).toMatchObject({ evicted: ['shop/db-0'], deleted: true });
    expect(evictions(fake)).toEqual([]);
    const [deletion] = fake.requestsTo('DELETE', '/api/v1/namespaces/shop/pods/db-0');
    expect(deletion).toMatchObject({ status: 200, query: { gracePeriodSeconds: '7' } });
    expect(fake.pods.has('shop/db-0')).toBe(false);
  });

  it('gracePeriodSeconds: passed in the eviction, the pod terminates with it', async () => {
    const { fake, kube } = await setUp({
      nodes: ['node-1'],
      pods: [{ namespace: 'shop', name: 'web-1', node: 'node-1', ownerKind: 'ReplicaSet' }],
      behaviour: { deletePodsOnEviction: false },
    });
    await failure(kube.drain('node-1', { gracePeriodSeconds: 12, timeoutMs: 1000 }));
    expect(evictions(fake)[0]!.body).toMatchObject({ deleteOptions: { gracePeriodSeconds: 12 } });
    expect(fake.pods.get('shop/web-1')!.metadata.deletionGracePeriodSeconds).toBe(12);
  });

  it('refuses bad options before sending anything', async () => {
    const { fake, kube } = await setUp({ nodes: ['node-1'] });
    await expect(
      kube.drain('node-1', { gracePeriodSeconds: -1, skipWaitForDeleteTimeoutSeconds: 1.5 }),
    ).rejects.toThrow(
      'gracePeriodSeconds: must be a whole number of seconds >= 0, got -1; skipWaitForDeleteTimeoutSeconds: must be a whole number of seconds >= 0, got 1.5',
    );
    expect(fake.requests).toEqual([]);
  });
});

describe('cordon reason and copy taints', () => {
  it('writes who/when/why in the same patch as the cordon; uncordon removes them', async () => {
    const { fake, kube } = await setUp({ nodes: ['node-1'] });
    await kube.cordon('node-1', {
      reason: { reason: 'kernel upgrade', by: 'alice', at: '2026-01-02T03:04:05Z' },
    });
    const patches = fake.requestsTo('PATCH', '/api/v1/nodes/node-1');
    expect(patches).toHaveLength(1);
    expect(patches[0]!.body).toEqual({
      spec: { unschedulable: true },
      metadata: {
        annotations: {
          'nodebatch.io/cordon-reason': 'kernel upgrade',
          'nodebatch.io/cordoned-by': 'alice',
          'nodebatch.io/cordoned-at': '2026-01-02T03:04:05Z',
        },
      },
    });
    await kube.uncordon('node-1');
    expect(fake.nodes.get('node-1')!.metadata.annotations ?? {}).toEqual({});
    expect(fake.nodes.get('node-1')!.spec.unschedulable).toBeUndefined();
  });

  it('never copies the cluster-managed taints; merge keeps the target taints, replace drops them', async () => {
    const { fake, kube } = await setUp({
      nodes: [
        {
          name: 'source',
          taints: [
            { key: 'pool', value: 'gpu', effect: 'NoSchedule' },
            { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' },
            { key: 'node.cloudprovider.kubernetes.io/uninitialized', value: 'true', effect: 'NoSchedule' },
          ],
        },
        {
          name: 'target',
          taints: [
            { key: 'team', value: 'a', effect: 'NoSchedule' },
            { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' },
          ],
        },
      ],
    });
    const taints = await kube.readTaints('source');
    await kube.copyTaints('source', 'target', { taints });
    expect(fake.nodes.get('target')!.spec.taints!.map((taint) => taint.key)).toEqual([
      'team',
      'node.kubernetes.io/not-ready',
      'pool',
    ]);
    await kube.copyTaints('source', 'target', { taints, mode: 'replace' });
    expect(fake.nodes.get('target')!.spec.taints!.map((taint) => taint.key)).toEqual([
      'node.kubernetes.io/not-ready',
      'pool',
    ]);
    // The source was read once (readTaints); the copies used that read.
    expect(fake.requestsTo('GET', '/api/v1/nodes/source')).toHaveLength(1);
    await expect(kube.readTaints('missing')).rejects.toBeInstanceOf(SourceNodeNotFoundError);
  });
});

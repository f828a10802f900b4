import { describe, expect, it } from 'vitest';
import {
  DrainTimeoutError,
  InvalidNodeInputError,
  KubeOperationError,
  OperationAbortedError,
} from './errors.js';
import type { DrainProgress } from './node-operator.js';
import { SimulatedCluster } from './simulated-cluster.js';
import { instantClock } from './testing/instant-clock.js';

describe('SimulatedCluster', () => {
  it('has sim-node-1..N, each with a DaemonSet pod and a few others', () => {
    const cluster = new SimulatedCluster({ nodes: 5 });
    expect(cluster.listNodes()).toEqual([
      'sim-node-1',
      'sim-node-2',
      'sim-node-3',
      'sim-node-4',
      'sim-node-5',
    ]);
    for (const name of cluster.listNodes()) {
      const pods = cluster.getNode(name)!.pods;
      expect(pods.filter((pod) => pod.ownerKind === 'DaemonSet')).toHaveLength(1);
      expect(pods.length).toBeGreaterThanOrEqual(3);
    }
    expect(new SimulatedCluster().listNodes()).toHaveLength(50);
  });

  it('cordons, uncordons, labels and taints in memory', async () => {
    const cluster = new SimulatedCluster({ nodes: 2 });
    await cluster.cordon('sim-node-1');
    expect(cluster.getNode('sim-node-1')!.unschedulable).toBe(true);
    await cluster.uncordon('sim-node-1');
    expect(cluster.getNode('sim-node-1')!.unschedulable).toBe(false);

    await cluster.addLabels('sim-node-1', { 'example.com/zone': 'a', tier: 'gold' });
    await cluster.removeLabels('sim-node-1', ['tier', 'absent']);
    expect(cluster.getNode('sim-node-1')!.labels).toMatchObject({ 'example.com/zone': 'a' });
    expect(cluster.getNode('sim-node-1')!.labels).not.toHaveProperty('tier');

    await cluster.addTaints('sim-node-1', [
      { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
      { key: 'dedicated', value: 'gpu', effect: 'NoExecute' },
    ]);
    await cluster.addTaints('sim-node-1', [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }]);
    expect(cluster.getNode('sim-node-1')!.taints).toEqual([
      { key: 'dedicated', value: 'db', effect: 'NoSchedule' },
      { key: 'dedicated', value: 'gpu', effect: 'NoExecute' },
    ]);
    await cluster.copyTaints('sim-node-1', 'sim-node-2');
    expect(cluster.getNode('sim-node-2')!.taints).toEqual(cluster.getNode('sim-node-1')!.taints);
    await cluster.removeTaints('sim-node-1', [{ key: 'dedicated', effect: 'NoExecute' }]);
    expect(cluster.getNode('sim-node-1')!.taints).toEqual([
      { key: 'dedicated', value: 'db', effect: 'NoSchedule' },
    ]);
    await cluster.removeTaints('sim-node-2', [{ key: 'dedicated' }]);
    expect(cluster.getNode('sim-node-2')!.taints).toEqual([]);
  });

  it('validates input before touching state', async () => {
    const cluster = new SimulatedCluster({ nodes: 1 });
    await expect(cluster.cordon('Sim_Node')).rejects.toBeInstanceOf(InvalidNodeInputError);
    await expect(cluster.addLabels('sim-node-1', { 'bad key': 'x' })).rejects.toBeInstanceOf(
      InvalidNodeInputError,
    );
    await expect(
      cluster.addTaints('sim-node-1', [{ key: 'k', effect: 'Sometimes' as 'NoSchedule' }]),
    ).rejects.toThrow(/taints\[0\]\.effect/);
    expect(cluster.getNode('sim-node-1')!.labels).not.toHaveProperty('bad key');
    expect(cluster.getNode('sim-node-1')!.taints).toEqual([]);
  });

  it('answers a missing node with a non-retryable 404', async () => {
    const cluster = new SimulatedCluster({ nodes: 1 });
    const error = await cluster.cordon('sim-node-9').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubeOperationError);
    expect(error).toMatchObject({
      code: 'NODE_NOT_FOUND',
      statusCode: 404,
      retryable: false,
      node: 'sim-node-9',
    });
  });

  it('drains: skips DaemonSet and mirror pods, reports each eviction, reschedules elsewhere', async () => {
    const cluster = new SimulatedCluster({ nodes: 3, random: () => 0 });
    cluster.addNode({
      name: 'worker-a',
      pods: [
        { namespace: 'kube-system', name: 'proxy', ownerKind: 'DaemonSet' },
        { namespace: 'kube-system', name: 'etcd-worker-a', mirror: true },
        { namespace: 'shop', name: 'web-1', ownerKind: 'ReplicaSet' },
        { namespace: 'shop', name: 'web-2', ownerKind: 'ReplicaSet' },
        { namespace: 'shop', name: 'debug', ownerKind: 'Job' },
      ],
    });
    const progress: DrainProgress[] = [];
    const result = await cluster.drain('worker-a', { onProgress: (p) => progress.push(p) });
    expect(result.evicted).toEqual(['shop/web-1', 'shop/web-2', 'shop/debug']);
    expect(result.skipped).toEqual([
      { pod: 'kube-system/proxy', reason: 'daemonset' },
      { pod: 'kube-system/etcd-worker-a', reason: 'mirror' },
    ]);
    expect(progress.map((p) => [p.done, p.total])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    const node = cluster.getNode('worker-a')!;
    expect(node.unschedulable).toBe(true);
    expect(node.pods.map((pod) => pod.name)).toEqual(['proxy', 'etcd-worker-a']);
    // The three controlled pods were recreated on sim-node-1 (random() = 0).
    expect(cluster.getNode('sim-node-1')!.pods.filter((pod) => pod.namespace === 'shop')).toHaveLength(3);
  });

  it('refuses, as the Kubernetes operator does, a bare pod and an emptyDir pod unless told, evicting nothing', async () => {
    const cluster = new SimulatedCluster({ nodes: 2, random: () => 0 });
    cluster.addNode({
      name: 'worker-b',
      pods: [
        { namespace: 'shop', name: 'web-1', ownerKind: 'ReplicaSet' },
        { namespace: 'shop', name: 'bare' },
        { namespace: 'shop', name: 'cache', ownerKind: 'ReplicaSet', emptyDir: true },
      ],
    });
    await expect(cluster.drain('worker-b')).rejects.toThrow(
      'drain of node "worker-b" refused: cannot delete Pods with local storage (use deleteEmptyDirData to override): shop/cache; ' +
        'cannot delete Pods that declare no controller (use force to override): shop/bare; no pod was evicted and the node stays cordoned',
    );
    expect(cluster.getNode('worker-b')!.pods).toHaveLength(3);
    const result = await cluster.drain('worker-b', { force: true, deleteEmptyDirData: true });
    expect(result.evicted.sort()).toEqual(['shop/bare', 'shop/cache', 'shop/web-1']);
  });

  it('lets two drains of the same node run at once without recreating a pod twice', async () => {
    const cluster = new SimulatedCluster({ nodes: 4, latencyMs: 1, clock: instantClock() });
    const podCount = () =>
      cluster.listNodes().reduce((sum, name) => sum + cluster.getNode(name)!.pods.length, 0);
    const before = podCount();
    const [first, second] = await Promise.all([cluster.drain('sim-node-1'), cluster.drain('sim-node-1')]);
    expect(first.evicted).toEqual(second.evicted);
    expect(podCount()).toBe(before);
  });

  it('retries a blocked eviction with backoff until it passes', async () => {
    const clock = instantClock();
    const cluster = new SimulatedCluster({
      nodes: 1,
      clock,
      random: () => 1,
      evictionBackoff: { initialMs: 100, maxMs: 400 },
    });
    cluster.blockEviction('default/app-1-1', 3);
    const result = await cluster.drain('sim-node-1', { timeoutMs: 10_000 });
    expect(result.evicted).toContain('default/app-1-1');
    expect(clock.sleeps).toEqual([100, 200, 400]);
  });

  it('times out when an eviction stays blocked, naming the pods left', async () => {
    const clock = instantClock();
    const cluster = new SimulatedCluster({
      nodes: 1,
      clock,
      evictionBackoff: { initialMs: 100, maxMs: 400 },
    });
    cluster.blockEviction('default/app-1-2', 'forever');
    const error = await cluster.drain('sim-node-1', { timeoutMs: 2_000 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DrainTimeoutError);
    expect(error).toMatchObject({
      code: 'DRAIN_TIMEOUT',
      retryable: false,
      remainingPods: ['default/app-1-2', 'default/app-1-3'],
    });
    expect(clock.now() - 1_000_000).toBeLessThanOrEqual(2_000);
    expect(cluster.getNode('sim-node-1')!.pods.map((pod) => pod.name)).toContain('app-1-2');
  });

  it('stops a drain when the signal aborts, leaving the rest of the pods', async () => {
    const cluster = new SimulatedCluster({ nodes: 1, latencyMs: 5, clock: instantClock() });
    const controller = new AbortController();
    const error = await cluster
      .drain('sim-node-1', {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.done === 1) controller.abort();
        },
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OperationAbortedError);
    // node 1 has 3 ReplicaSet pods: one was evicted before the abort.
    expect(cluster.getNode('sim-node-1')!.pods.filter((pod) => pod.ownerKind === 'ReplicaSet')).toHaveLength(
      2,
    );
  });

  it('fails operations at the configured rate with retryable errors', async () => {
    const draws = [0.05, 0.5];
    const cluster = new SimulatedCluster({ nodes: 1, failureRate: 0.1, random: () => draws.shift() ?? 0.9 });
    const error = await cluster.cordon('sim-node-1').catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'SIMULATED_FAILURE', retryable: true, statusCode: 503 });
    expect(cluster.getNode('sim-node-1')!.unschedulable).toBe(false);
    await cluster.cordon('sim-node-1');
    expect(cluster.getNode('sim-node-1')!.unschedulable).toBe(true);
  });

  it('takes the configured latency per operation', async () => {
    const clock = instantClock();
    const cluster = new SimulatedCluster({ nodes: 1, latencyMs: 25, clock });
    await cluster.cordon('sim-node-1');
    await cluster.addLabels('sim-node-1', { a: 'b' });
    expect(clock.sleeps).toEqual([25, 25]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeApiCall } from './kubernetes-api-calls.js';
import { KubernetesNodeOperator } from './kubernetes-node-operator.js';
import { GATEWAY_KUBERNETES_API_CALLS, KubernetesNodeInventory } from './node-inventory.js';
import { apiCallOfRequest, startFakeKubeApi, type FakeKubeApi } from './testing/index.js';

let fake: FakeKubeApi;
let inventory: KubernetesNodeInventory;

beforeAll(async () => {
  fake = await startFakeKubeApi({
    nodes: [
      { name: 'cp-1', labels: { 'node-role.kubernetes.io/control-plane': '', pool: 'system' } },
      {
        name: 'gpu-1',
        labels: { pool: 'gpu' },
        taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }],
      },
      { name: 'gpu-2', labels: { pool: 'gpu' } },
      { name: 'web-1', labels: { pool: 'web' } },
    ],
    pods: [
      { name: 'a', node: 'gpu-1', ownerKind: 'ReplicaSet' },
      { name: 'b', node: 'gpu-1', ownerKind: 'ReplicaSet' },
      { name: 'done', node: 'gpu-1', phase: 'Succeeded' },
    ],
  });
  fake.nodes.get('gpu-2')!.status.conditions = [{ type: 'Ready', status: 'False' }];
  inventory = new KubernetesNodeInventory(fake.kubeConfig(), 'prod');
  await new KubernetesNodeOperator({ kubeConfig: fake.kubeConfig() }).cordon('web-1', {
    reason: { reason: 'disk errors', by: 'bob', at: '2026-01-01T00:00:00Z' },
  });
  fake.clearRequests();
});

afterAll(async () => {
  await fake.close();
});

describe('node inventory', () => {
  it('shows name, Ready, schedulable, roles, labels, taints, running pod count and cordon reason', async () => {
    const page = await inventory.listNodes();
    expect(page).toMatchObject({ cluster: 'prod', simulated: false, total: 4 });
    expect(page.items.map((node) => node.name)).toEqual(['cp-1', 'gpu-1', 'gpu-2', 'web-1']);
    expect(page.items[0]).toMatchObject({ roles: ['control-plane'], ready: 'True', schedulable: true });
    expect(page.items[1]).toMatchObject({
      podCount: 2,
      taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }],
      labels: { pool: 'gpu' },
    });
    expect(page.items[2]).toMatchObject({ ready: 'False' });
    expect(page.items[3]).toMatchObject({
      schedulable: false,
      cordonReason: { reason: 'disk errors', by: 'bob', at: '2026-01-01T00:00:00Z' },
    });
  });

  it('filters by label selector (at the API server), status and name, and pages', async () => {
    fake.clearRequests();
    const gpu = await inventory.listNodes({ labelSelector: 'pool=gpu' });
    expect(gpu.items.map((node) => node.name)).toEqual(['gpu-1', 'gpu-2']);
    expect(fake.requestsTo('GET', '/api/v1/nodes')[0]!.query).toMatchObject({ labelSelector: 'pool=gpu' });
    expect((await inventory.listNodes({ status: 'notready' })).items.map((node) => node.name)).toEqual([
      'gpu-2',
    ]);
    expect((await inventory.listNodes({ status: 'cordoned' })).items.map((node) => node.name)).toEqual([
      'web-1',
    ]);
    expect((await inventory.listNodes({ name: 'gpu' })).total).toBe(2);
    const first = await inventory.listNodes({ limit: 3 });
    expect(first.items.map((node) => node.name)).toEqual(['cp-1', 'gpu-1', 'gpu-2']);
    const second = await inventory.listNodes({ limit: 3, continue: first.continue! });
    expect(second.items.map((node) => node.name)).toEqual(['web-1']);
    expect(second.continue).toBeUndefined();
    await expect(inventory.listNodes({ labelSelector: 'pool in gpu' })).rejects.toThrow(/labelSelector/);
  });

  it('resolves a selector to node names', async () => {
    expect(await inventory.resolveSelector('pool in (gpu, web)')).toEqual(['gpu-1', 'gpu-2', 'web-1']);
    expect(await inventory.resolveSelector('pool=none')).toEqual([]);
  });

  it('reads the taints of named nodes, leaving out the ones the cluster does not have', async () => {
    const taints = await inventory.nodeTaints(['gpu-1', 'gpu-2', 'gone-1']);
    expect(taints).toEqual(
      new Map([
        ['gpu-1', [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }]],
        ['gpu-2', []],
      ]),
    );
  });

  it('makes only the read-only calls the gateway role grants', async () => {
    fake.clearRequests();
    await inventory.listNodes();
    await inventory.resolveSelector('pool=gpu');
    await inventory.nodeTaints(['gpu-1']);
    const made = new Set(fake.requests.map((request) => describeApiCall(apiCallOfRequest(request))));
    expect([...made].sort()).toEqual(GATEWAY_KUBERNETES_API_CALLS.map(describeApiCall).sort());
  });
});

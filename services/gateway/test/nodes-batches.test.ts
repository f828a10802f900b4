import { KubernetesNodeInventory } from '@nodebatch/kube';
import { startFakeKubeApi, type FakeKubeApi } from '@nodebatch/kube/testing';
import { loadTaskState } from '@nodebatch/progress';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase, type TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayHandle } from '../src/gateway.js';
import { api, startProducer, startTestGateway, testConfig, tokenFor } from './support.js';

let db: TestDatabase;
let fake: FakeKubeApi;
let gateway: GatewayHandle;
let producer: Runtime;
let viewer: string;
let admin: string;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'gw_nodes' });
  fake = await startFakeKubeApi({
    nodes: [
      { name: 'gpu-1', labels: { pool: 'gpu' } },
      { name: 'gpu-2', labels: { pool: 'gpu' } },
      { name: 'web-1', labels: { pool: 'web' }, unschedulable: true },
    ],
    pods: [{ name: 'a', node: 'gpu-1', ownerKind: 'ReplicaSet' }],
  });
  const config = testConfig(db.url, { LIMIT_DRAIN_CONCURRENCY: '3', LIMIT_BATCH_NODES: '2' });
  producer = await startProducer(config);
  gateway = await startTestGateway(config, { nodes: new KubernetesNodeInventory(fake.kubeConfig(), 'prod') });
  [viewer, admin] = await Promise.all([tokenFor('vera', 'viewer'), tokenFor('ada', 'admin')]);
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await producer?.close();
  await fake?.close();
  await db?.drop();
});

const post = (body: unknown) => api(gateway, 'POST', '/api/v1/batches', { token: admin, body });

describe('GET /api/v1/nodes', () => {
  it('lists the nodes with the cluster name to a viewer, filtered and paged', async () => {
    const all = await api(gateway, 'GET', '/api/v1/nodes', { token: viewer });
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ cluster: 'prod', simulated: false, total: 3 });
    expect(all.body.items[0]).toMatchObject({ name: 'gpu-1', ready: 'True', schedulable: true, podCount: 1 });
    const cordoned = await api(gateway, 'GET', '/api/v1/nodes?status=cordoned', { token: viewer });
    expect(cordoned.body.items.map((node: { name: string }) => node.name)).toEqual(['web-1']);
    const page = await api(gateway, 'GET', '/api/v1/nodes?selector=pool%3Dgpu&limit=1', { token: viewer });
    expect(page.body).toMatchObject({ total: 2, continue: '1' });
    expect(page.body.items.map((node: { name: string }) => node.name)).toEqual(['gpu-1']);
    const bad = await api(gateway, 'GET', '/api/v1/nodes?selector=pool%20in%20gpu', { token: viewer });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/^selector: invalid label selector/);
    expect((await api(gateway, 'GET', '/api/v1/nodes')).status).toBe(401);
  });

  it('answers an unknown cluster with 400 naming the known ones', async () => {
    const response = await api(gateway, 'GET', '/api/v1/nodes?cluster=staging', { token: viewer });
    expect(response.status).toBe(400);
    expect(response.body.message).toBe('cluster: unknown cluster "staging"; known clusters: prod');
  });
});

describe('POST /api/v1/batches with a selector, limits, a reason and a cluster', () => {
  it('resolves a selector when the batch is accepted and records the names, the selector and the reason', async () => {
    const response = await post({
      action: 'cordon',
      selector: 'pool=gpu',
      reason: 'firmware',
      cluster: 'prod',
    });
    expect(response.status).toBe(202);
    const state = await loadTaskState(producer.store, response.body.taskId as string);
    expect(state).toMatchObject({ nodes: ['gpu-1', 'gpu-2'], reason: 'firmware', cluster: 'prod' });
  });

  it('refuses a selector that matches nothing, naming it', async () => {
    const response = await post({ action: 'cordon', selector: 'pool=none' });
    expect(response.status).toBe(400);
    expect(response.body.message).toBe(
      'body.selector: selector "pool=none" matches no node of cluster "prod"',
    );
  });

  it('refuses nodes and selector together, and neither', async () => {
    for (const body of [{ action: 'cordon', selector: 'pool=gpu', nodes: ['gpu-1'] }, { action: 'cordon' }]) {
      const response = await post(body);
      expect(response.status).toBe(400);
      expect(response.body.message).toContain('give either nodes or selector');
    }
  });

  it('refuses a batch over a limit with 400 naming the limit, never clamping it', async () => {
    const drain = await post({ action: 'drain', nodes: ['gpu-1'], concurrency: 4 });
    expect(drain.status).toBe(400);
    expect(drain.body.message).toBe(
      'body.concurrency: 4 is over the limit of 3 for drain (LIMIT_DRAIN_CONCURRENCY)',
    );
    expect((await post({ action: 'drain', nodes: ['gpu-1'], concurrency: 3 })).status).toBe(202);
    const big = await post({ action: 'cordon', selector: 'pool in (gpu, web)' });
    expect(big.status).toBe(400);
    expect(big.body.message).toBe(
      'body.nodes: 3 nodes is over the limit of 2 per batch (LIMIT_BATCH_NODES); split the batch',
    );
  });

  it('refuses an unknown cluster, naming the known ones', async () => {
    const response = await post({ action: 'cordon', nodes: ['gpu-1'], cluster: 'staging' });
    expect(response.status).toBe(400);
    expect(response.body.message).toBe('body.cluster: unknown cluster "staging"; known clusters: prod');
  });
});

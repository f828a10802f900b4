import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeKubeApi, type FakeKubeApi } from './fake-kube-api.js';

let fake: FakeKubeApi;
let token: string;

beforeEach(async () => {
  fake = await startFakeKubeApi({
    nodes: [{ name: 'node-1', labels: { zone: 'a' } }],
    pods: [
      { name: 'web', namespace: 'shop', node: 'node-1', ownerKind: 'ReplicaSet' },
      { name: 'other', node: 'node-2' },
    ],
  });
  const config = JSON.parse(await readFile(fake.kubeconfigPath, 'utf8')) as {
    users: { user: { token: string } }[];
  };
  token = config.users[0]!.user.token;
});

afterEach(async () => {
  await fake.close();
});

async function send(
  method: string,
  path: string,
  options: { contentType?: string; body?: unknown; auth?: boolean } = {},
) {
  const response = await fetch(`${fake.url}${path}`, {
    method,
    headers: {
      ...(options.auth === false ? {} : { authorization: `Bearer ${token}` }),
      ...(options.contentType ? { 'content-type': options.contentType } : {}),
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests assert on the JSON field by field
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('fake Kubernetes API server', () => {
  it('wants the bearer token of its kubeconfig, and records requests without it', async () => {
    const denied = await send('GET', '/api/v1/nodes/node-1', { auth: false });
    expect(denied).toMatchObject({
      status: 401,
      body: { kind: 'Status', reason: 'Unauthorized', code: 401 },
    });
    expect(fake.requests[0]).toMatchObject({ method: 'GET', authenticated: false, status: 401 });
    expect(JSON.stringify(fake.requests)).not.toContain(token);
  });

  it('serves nodes and answers a missing one with a NotFound Status', async () => {
    expect((await send('GET', '/api/v1/nodes/node-1')).body).toMatchObject({
      kind: 'Node',
      metadata: { name: 'node-1', labels: { zone: 'a' } },
    });
    expect(await send('GET', '/api/v1/nodes/nope')).toMatchObject({
      status: 404,
      body: { status: 'Failure', reason: 'NotFound', message: 'nodes "nope" not found', code: 404 },
    });
    expect((await send('GET', '/api/v1/nodes')).body.items).toHaveLength(1);
  });

  it('accepts only the patch content types, and applies each', async () => {
    expect(
      await send('PATCH', '/api/v1/nodes/node-1', { contentType: 'application/json', body: { spec: {} } }),
    ).toMatchObject({ status: 415, body: { reason: 'UnsupportedMediaType' } });

    const merged = await send('PATCH', '/api/v1/nodes/node-1', {
      contentType: 'application/merge-patch+json',
      body: { metadata: { labels: { zone: null, tier: 'gold' } } },
    });
    expect(merged.status).toBe(200);
    expect(merged.body.metadata.labels).toEqual({ 'kubernetes.io/hostname': 'node-1', tier: 'gold' });

    const strategic = await send('PATCH', '/api/v1/nodes/node-1', {
      contentType: 'application/strategic-merge-patch+json',
      body: { spec: { unschedulable: true } },
    });
    expect(strategic.body.spec).toEqual({ unschedulable: true });

    const json = await send('PATCH', '/api/v1/nodes/node-1', {
      contentType: 'application/json-patch+json',
      body: [
        { op: 'test', path: '/spec/unschedulable', value: true },
        { op: 'add', path: '/metadata/labels/example.com~1pool', value: 'gpu' },
        { op: 'add', path: '/spec/taints', value: [{ key: 'k', effect: 'NoSchedule' }] },
      ],
    });
    expect(json.status).toBe(200);
    expect(json.body.metadata.labels['example.com/pool']).toBe('gpu');
    expect(fake.nodes.get('node-1')!.spec.taints).toEqual([{ key: 'k', effect: 'NoSchedule' }]);
  });

  it('answers 409 on a stale resourceVersion and 422 on a failed JSON patch test', async () => {
    const version = fake.nodes.get('node-1')!.metadata.resourceVersion;
    const stale = String(Number(version) - 1);
    expect(
      await send('PATCH', '/api/v1/nodes/node-1', {
        contentType: 'application/merge-patch+json',
        body: { metadata: { resourceVersion: stale }, spec: { unschedulable: true } },
      }),
    ).toMatchObject({ status: 409, body: { reason: 'Conflict' } });
    expect(
      await send('PATCH', '/api/v1/nodes/node-1', {
        contentType: 'application/json-patch+json',
        body: [{ op: 'replace', path: '/metadata/resourceVersion', value: stale }],
      }),
    ).toMatchObject({ status: 409 });
    expect(
      await send('PATCH', '/api/v1/nodes/node-1', {
        contentType: 'application/json-patch+json',
        body: [{ op: 'test', path: '/metadata/labels/zone', value: 'b' }],
      }),
    ).toMatchObject({ status: 422, body: { reason: 'Invalid' } });
    expect(fake.nodes.get('node-1')!.metadata.resourceVersion).toBe(version);
  });

  it('bumps resourceVersion only when a patch changes the node, and validates the result', async () => {
    const version = fake.nodes.get('node-1')!.metadata.resourceVersion;
    await send('PATCH', '/api/v1/nodes/node-1', {
      contentType: 'application/merge-patch+json',
      body: { metadata: { labels: { zone: 'a' } } },
    });
    expect(fake.nodes.get('node-1')!.metadata.resourceVersion).toBe(version);
    const invalid = await send('PATCH', '/api/v1/nodes/node-1', {
      contentType: 'application/merge-patch+json',
      body: { spec: { taints: [{ key: 'k', effect: 'Sometimes' }] } },
    });
    expect(invalid).toMatchObject({ status: 422, body: { reason: 'Invalid' } });
    expect(invalid.body.message).toContain('spec.taints[0].effect');
  });

  it('lists pods by spec.nodeName and refuses other field selectors', async () => {
    const list = await send(
      'GET',
      `/api/v1/pods?fieldSelector=${encodeURIComponent('spec.nodeName=node-1')}`,
    );
    expect(list.body.kind).toBe('PodList');
    expect(list.body.items.map((pod: { metadata: { name: string } }) => pod.metadata.name)).toEqual(['web']);
    expect(await send('GET', '/api/v1/pods?fieldSelector=status.phase%3DRunning')).toMatchObject({
      status: 400,
    });
  });

  it('evicts with a policy/v1 Eviction: 429 while blocked, then 201 and the pod is gone', async () => {
    const eviction = {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name: 'web', namespace: 'shop' },
    };
    const path = '/api/v1/namespaces/shop/pods/web/eviction';
    expect(await send('POST', path, { contentType: 'text/plain', body: eviction })).toMatchObject({
      status: 415,
    });
    expect(
      await send('POST', path, {
        contentType: 'application/json',
        body: { ...eviction, apiVersion: 'policy/v1beta1' },
      }),
    ).toMatchObject({ status: 400 });
    fake.blockEviction('shop/web', 1);
    const blocked = await send('POST', path, { contentType: 'application/json', body: eviction });
    expect(blocked).toMatchObject({ status: 429, body: { reason: 'TooManyRequests' } });
    expect(blocked.body.details.causes[0].reason).toBe('DisruptionBudget');
    expect(await send('POST', path, { contentType: 'application/json', body: eviction })).toMatchObject({
      status: 201,
      body: { status: 'Success' },
    });
    expect(fake.pods.has('shop/web')).toBe(false);
    expect(await send('POST', path, { contentType: 'application/json', body: eviction })).toMatchObject({
      status: 404,
    });
  });

  it('injects faults a given number of times on matching requests', async () => {
    fake.injectFault({ method: 'GET', path: /^\/api\/v1\/nodes\//, status: 503, times: 2 });
    expect((await send('GET', '/api/v1/nodes/node-1')).status).toBe(503);
    expect((await send('GET', '/api/v1/pods')).status).toBe(200);
    expect((await send('GET', '/api/v1/nodes/node-1')).status).toBe(503);
    expect((await send('GET', '/api/v1/nodes/node-1')).status).toBe(200);
  });

  it('writes a kubeconfig client-node loads', () => {
    const config = fake.kubeConfig();
    expect(config.getCurrentCluster()?.server).toBe(fake.url);
  });
});

import { afterAll, beforeAll, expect, it } from 'vitest';
import { KUBERNETES_API_CALLS, describeApiCall } from './kubernetes-api-calls.js';
import { KubernetesNodeOperator } from './kubernetes-node-operator.js';
import { apiCallOfRequest, startFakeKubeApi, type FakeKubeApi } from './testing/index.js';

let fake: FakeKubeApi;

beforeAll(async () => {
  fake = await startFakeKubeApi({
    nodes: ['node-1', 'node-2'],
    pods: [
      { name: 'web', node: 'node-1', ownerKind: 'ReplicaSet' },
      { name: 'agent', node: 'node-1', ownerKind: 'DaemonSet' },
      { name: 'bare', node: 'node-2' },
    ],
  });
});

afterAll(async () => {
  await fake.close();
});

it('lists exactly the API calls the Kubernetes operator makes (the RBAC rules follow this list)', async () => {
  fake.setBehaviour({ deletePodsOnEviction: true });
  const kube = new KubernetesNodeOperator({ kubeConfig: fake.kubeConfig(), deletionPollMs: 5 });
  await kube.cordon('node-1');
  await kube.uncordon('node-1');
  await kube.addLabels('node-1', { a: 'b' });
  await kube.removeLabels('node-1', ['a']);
  await kube.addTaints('node-1', [{ key: 'k', effect: 'NoSchedule' }]);
  await kube.removeTaints('node-1', [{ key: 'k' }]);
  await kube.copyTaints('node-2', 'node-1');
  await kube.drain('node-1');
  await kube.drain('node-2', { force: true, disableEviction: true });

  const made = new Set(fake.requests.map((request) => describeApiCall(apiCallOfRequest(request))));
  expect([...made].sort()).toEqual(KUBERNETES_API_CALLS.map(describeApiCall).sort());
});

it('derives RBAC terms from request paths as the API server does', () => {
  expect(
    apiCallOfRequest({ method: 'POST', path: '/api/v1/namespaces/ns/pods/p/eviction', query: {} }),
  ).toEqual({
    apiGroup: '',
    resource: 'pods',
    subresource: 'eviction',
    verb: 'create',
  });
  expect(
    apiCallOfRequest({ method: 'GET', path: '/apis/apps/v1/namespaces/ns/daemonsets', query: {} }),
  ).toEqual({
    apiGroup: 'apps',
    resource: 'daemonsets',
    verb: 'list',
  });
});

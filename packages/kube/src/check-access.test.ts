import { afterEach, describe, expect, it } from 'vitest';
import { checkKubernetesAccess } from './check-access.js';
import { describeApiCall, KUBERNETES_API_CALLS } from './kubernetes-api-calls.js';
import { SELF_SUBJECT_ACCESS_REVIEW_PATH, startFakeKubeApi, type FakeKubeApi } from './testing/index.js';

let api: FakeKubeApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

describe('checkKubernetesAccess', () => {
  it('asks one SelfSubjectAccessReview per call the worker makes and reports each answer', async () => {
    api = await startFakeKubeApi({ nodes: ['node-1'] });
    api.permissions.deny({ apiGroup: '', resource: 'pods', subresource: 'eviction', verb: 'create' });
    const results = await checkKubernetesAccess(api.kubeConfig());
    expect(results.map((r) => [r.description, r.allowed])).toEqual(
      KUBERNETES_API_CALLS.map((call) => [
        describeApiCall(call),
        !(call.subresource === 'eviction' && call.verb === 'create'),
      ]),
    );
    expect(results.find((r) => !r.allowed)?.reason).toBe('denied by the fake API server');
    expect(results.map((r) => r.description)).toContain('create pods/eviction');
    const reviews = api.requestsTo('POST', SELF_SUBJECT_ACCESS_REVIEW_PATH);
    expect(reviews).toHaveLength(KUBERNETES_API_CALLS.length);
    expect(reviews.map((r) => (r.body as { spec: unknown }).spec)).toContainEqual({
      resourceAttributes: { group: '', resource: 'pods', subresource: 'eviction', verb: 'create' },
    });
    // Looking never touches a node.
    expect(
      api.requests.filter((r) => r.method !== 'POST' || r.path !== SELF_SUBJECT_ACCESS_REVIEW_PATH),
    ).toEqual([]);
  });

  it('rejects when the API server cannot be reached', async () => {
    api = await startFakeKubeApi();
    const kubeConfig = api.kubeConfig();
    await api.close();
    api = undefined;
    await expect(checkKubernetesAccess(kubeConfig)).rejects.toThrow(/ECONNREFUSED|connect/);
  });

  it('answers a malformed review with 400 like the API server', async () => {
    api = await startFakeKubeApi();
    const kubeConfig = api.kubeConfig();
    const token = (kubeConfig.getCurrentUser() as { token: string }).token;
    const response = await fetch(`${api.url}${SELF_SUBJECT_ACCESS_REVIEW_PATH}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'SelfSubjectAccessReview', spec: {} }),
    });
    expect(response.status).toBe(400);
  });
});

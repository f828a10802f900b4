import { KubernetesNodeInventory } from '@nodebatch/kube';
import { startFakeKubeApi, type FakeKubeApi } from '@nodebatch/kube/testing';
import type { NewEvent } from '@nodebatch/progress';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayHandle } from '../src/gateway.js';
import { recordEventStream } from '@nodebatch/client/testing';
import type { ResponseBody } from './support.js';
import { JWT_SECRET, api, startProducer, startTestGateway, testConfig, tokenFor } from './support.js';

let db: TestDatabase;
/** The cluster the gateway reads (selectors, copy sources): `prod`. */
let fake: FakeKubeApi;
let gateway: GatewayHandle;
let producer: Runtime;
let viewer: string;
let operator: string;
let otherOperator: string;
let admin: string;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'gw_policy' });
  // Viewers may follow every task here (policy.seeAllTasksRoles), which cancel must not follow.
  const config = testConfig(db.url, { POLICY_SEE_ALL_TASKS_ROLES: 'admin,viewer' });
  producer = await startProducer(config);
  fake = await startFakeKubeApi({
    nodes: [
      { name: 'node-a' },
      {
        name: 'node-b',
        taints: [
          { key: 'team.example.com/batch', value: 'yes', effect: 'NoSchedule' },
          // The cluster's own: never copied, so it does not make a copy protected.
          { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' },
        ],
      },
      { name: 'cp-1', taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] },
      { name: 'gpu-1', labels: { pool: 'gpu' } },
      { name: 'gpu-2', labels: { pool: 'gpu' } },
    ],
  });
  gateway = await startTestGateway(config, { nodes: new KubernetesNodeInventory(fake.kubeConfig(), 'prod') });
  [viewer, operator, otherOperator, admin] = await Promise.all([
    tokenFor('vera', 'viewer'),
    tokenFor('otto', 'user'),
    tokenFor('olga', 'operator'),
    tokenFor('ada', 'admin'),
  ]);
});

afterAll(async () => {
  await gateway?.close();
  await producer?.close();
  await fake?.close();
  await db?.drop();
});

const post = (token: string, body: unknown) => api(gateway, 'POST', '/api/v1/batches', { token, body });
const auditOf = async (query: string): Promise<ResponseBody[]> => {
  const response = await api(gateway, 'GET', `/api/v1/audit?${query}`, { token: admin });
  expect(response.status).toBe(200);
  return response.body.entries as ResponseBody[];
};
const taskCount = async (): Promise<number> =>
  (await producer.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks')).rows[0]!.n;

describe('roles and policy', () => {
  it('refuses each request the default policy forbids with 403 naming the rule, audits it and writes no task', async () => {
    const before = await taskCount();
    const refusals: Array<[string, unknown, string, RegExp]> = [
      [
        viewer,
        { action: 'cordon', nodes: ['node-a'] },
        'policy.cordonRole',
        /role viewer may not cordon: policy\.cordonRole requires operator/,
      ],
      [
        operator,
        { action: 'drain', nodes: ['node-a'] },
        'policy.drainRole',
        /role operator may not drain: policy\.drainRole requires admin/,
      ],
      [
        operator,
        { action: 'label', nodes: ['node-a'], params: { set: { 'node-role.kubernetes.io/worker': '' } } },
        'policy.protectedPrefixes',
        /label "node-role\.kubernetes\.io\/worker".*need admin/,
      ],
      [
        operator,
        {
          action: 'taint',
          nodes: ['node-a'],
          params: { remove: [{ key: 'node-role.kubernetes.io/control-plane' }] },
        },
        'policy.protectedPrefixes',
        /taint "node-role\.kubernetes\.io\/control-plane"/,
      ],
    ];
    for (const [token, body, rule, message] of refusals) {
      const response = await post(token, body);
      expect(response.status, JSON.stringify(body)).toBe(403);
      expect(response.body).toMatchObject({ code: 'FORBIDDEN', rule });
      expect(response.body.message).toMatch(message);
    }
    expect(await taskCount()).toBe(before);
    const denied = (await auditOf('limit=50')).filter((entry) => entry.decision === 'denied');
    expect(denied.map((entry) => [entry.userId, entry.action, entry.rule])).toEqual(
      expect.arrayContaining([
        ['vera', 'cordon', 'policy.cordonRole'],
        ['otto', 'drain', 'policy.drainRole'],
        ['otto', 'label', 'policy.protectedPrefixes'],
        ['otto', 'taint', 'policy.protectedPrefixes'],
      ]),
    );
    expect(denied.find((entry) => entry.action === 'drain')).toMatchObject({
      role: 'operator',
      clientAddress: '127.0.0.1',
      nodes: ['node-a'],
      message: expect.stringMatching(/policy\.drainRole requires admin/),
    });
  });

  it('lets operators cordon, label and taint outside protected prefixes, and admins drain and touch them', async () => {
    expect((await post(operator, { action: 'cordon', nodes: ['node-a'] })).status).toBe(202);
    expect(
      (
        await post(operator, {
          action: 'label',
          nodes: ['node-a'],
          params: { set: { 'team.example.com/x': 'y' } },
        })
      ).status,
    ).toBe(202);
    expect(
      (await post(operator, { action: 'taint', nodes: ['node-a'], params: { copyFrom: 'node-b' } })).status,
    ).toBe(202);
    expect((await post(admin, { action: 'drain', nodes: ['node-a'] })).status).toBe(202);
    expect(
      (
        await post(admin, {
          action: 'label',
          nodes: ['node-a'],
          params: { set: { 'kubernetes.io/role': 'x' } },
        })
      ).status,
    ).toBe(202);
    expect((await api(gateway, 'GET', '/api/v1/tasks', { token: viewer })).status).toBe(200);
  });

  it('refuses a non-admin a copy of taints that carries or drops protected keys, reading the nodes at submission', async () => {
    const before = await taskCount();
    const fromControlPlane = await post(operator, {
      action: 'taint',
      nodes: ['node-a'],
      params: { copyFrom: 'cp-1' },
    });
    expect(fromControlPlane.status).toBe(403);
    expect(fromControlPlane.body).toMatchObject({ code: 'FORBIDDEN', rule: 'policy.protectedPrefixes' });
    expect(fromControlPlane.body.message).toMatch(
      /role operator may not copy from node "cp-1" the taint "node-role\.kubernetes\.io\/control-plane".*need admin/,
    );
    // replace drops the target's own taints: the control-plane taint of cp-1 would go.
    const ontoControlPlane = await post(operator, {
      action: 'taint',
      nodes: ['cp-1'],
      params: { copyFrom: 'node-b', mode: 'replace' },
    });
    expect(ontoControlPlane.status).toBe(403);
    expect(ontoControlPlane.body.message).toMatch(
      /may not change the taint "node-role\.kubernetes\.io\/control-plane"/,
    );
    const missing = await post(operator, {
      action: 'taint',
      nodes: ['node-a'],
      params: { copyFrom: 'gone-1' },
    });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ field: 'body.params.copyFrom' });
    expect(missing.body.message).toMatch(/"gone-1" .* is not in cluster "prod"/);
    expect(await taskCount()).toBe(before);
    const denied = (await auditOf('user=otto&action=taint')).filter((row) => row.decision === 'denied');
    expect(denied.map((row) => row.nodes)).toEqual(expect.arrayContaining([['node-a'], ['cp-1']]));

    // node-b's own taint is not protected and its cluster-managed one is never copied; an admin copies anything.
    expect(
      (await post(operator, { action: 'taint', nodes: ['node-a'], params: { copyFrom: 'node-b' } })).status,
    ).toBe(202);
    expect(
      (await post(admin, { action: 'taint', nodes: ['node-a'], params: { copyFrom: 'cp-1' } })).status,
    ).toBe(202);
  });

  it('shows a viewer given all tasks every task, but lets only the owner or an admin cancel', async () => {
    const taskId = (await post(operator, { action: 'cordon', nodes: ['node-c'] })).body.taskId as string;
    expect((await api(gateway, 'GET', `/api/v1/tasks/${taskId}`, { token: viewer })).status).toBe(200);
    expect((await api(gateway, 'GET', `/api/v1/tasks/${taskId}`, { token: otherOperator })).status).toBe(404);
    const byViewer = await api(gateway, 'POST', `/api/v1/tasks/${taskId}/cancel`, { token: viewer });
    expect(byViewer.status).toBe(403);
    expect(byViewer.body).toMatchObject({ code: 'FORBIDDEN', rule: 'cancel.ownerOrAdmin' });
    expect((await api(gateway, 'POST', `/api/v1/tasks/${taskId}/cancel`, { token: admin })).status).toBe(202);
    const rows = await auditOf(`task=${taskId}`);
    expect(rows.map((row) => [row.action, row.userId, row.decision])).toEqual([
      ['cancel', 'ada', 'allowed'],
      ['cancel', 'vera', 'denied'],
      ['cordon', 'otto', 'allowed'],
    ]);
  });
});

describe('tokens', () => {
  const sign = (claims: Record<string, unknown>, build: (jwt: SignJWT) => SignJWT) =>
    build(new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('otto')).sign(
      new TextEncoder().encode(JWT_SECRET),
    );

  it('refuses a token without exp and one valid for longer than the maximum lifetime', async () => {
    const noExp = await sign({ role: 'admin' }, (jwt) => jwt.setIssuedAt());
    const refused = await api(gateway, 'GET', '/api/v1/tasks', { token: noExp });
    expect(refused.status).toBe(401);
    expect(refused.body.message).toMatch(/exp/);
    const forever = await sign({ role: 'admin' }, (jwt) => jwt.setIssuedAt().setExpirationTime('400d'));
    const tooLong = await api(gateway, 'GET', '/api/v1/tasks', { token: forever });
    expect(tooLong.status).toBe(401);
    expect(tooLong.body.message).toMatch(/AUTH_MAX_TOKEN_LIFETIME_SECONDS/);
  });

  it('takes a cookie token on GET streams only: a state-changing request needs the Authorization header', async () => {
    const cookie = { cookie: `nodebatch_token=${admin}` };
    const byCookie = await api(gateway, 'POST', '/api/v1/batches', {
      headers: cookie,
      body: { action: 'drain', nodes: ['node-a'] },
    });
    expect(byCookie.status).toBe(401);
    const taskId = (await post(operator, { action: 'cordon', nodes: ['node-d'] })).body.taskId as string;
    const cancel = await api(gateway, 'POST', `/api/v1/tasks/${taskId}/cancel?token=${operator}`, {
      headers: { cookie: `nodebatch_token=${operator}` },
    });
    expect(cancel.status).toBe(401);
    const stream = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
      headers: { cookie: `nodebatch_token=${operator}` },
    });
    await stream.waitFor((messages) => messages.length === 1);
    stream.close();
  });
});

describe('audit trail', () => {
  it('records an accepted batch with its parameters and, once it ends, the outcome per node', async () => {
    const nodes = ['node-e', 'node-f'];
    const taskId = (await post(admin, { action: 'drain', nodes, params: { timeoutSeconds: 60 } })).body
      .taskId as string;
    const events: NewEvent[] = [
      { type: 'TaskStarted', data: { attempt: 1 } },
      { type: 'NodeSucceeded', data: { node: 'node-e' } },
      { type: 'NodeFailed', data: { node: 'node-f', error: 'eviction blocked', retryable: false } },
      { type: 'TaskCompleted', data: { succeeded: 1, failed: 1, skipped: 0 } },
    ];
    await producer.notifier.append(taskId, events);
    const rows = await auditOf(`task=${taskId}`);
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatchObject({
      kind: 'request',
      userId: 'ada',
      role: 'admin',
      action: 'drain',
      nodes,
      params: { timeoutSeconds: 60 },
      decision: 'allowed',
      rule: 'policy.drainRole',
    });
    expect(rows[0]).toMatchObject({
      kind: 'outcome',
      status: 'completed',
      outcome: {
        'node-e': { status: 'succeeded' },
        'node-f': { status: 'failed', error: 'eviction blocked' },
      },
    });
  });

  it('records the reason, selector and cluster on the rows of an accepted, a refused and a cancelled batch', async () => {
    const accepted = await post(operator, { action: 'cordon', selector: 'pool=gpu', reason: 'firmware' });
    expect(accepted.status).toBe(202);
    const taskId = accepted.body.taskId as string;
    const refused = await post(viewer, {
      action: 'cordon',
      selector: 'pool=gpu',
      reason: 'curious',
      cluster: 'prod',
    });
    expect(refused.status).toBe(403);
    const cancel = await api(gateway, 'POST', `/api/v1/tasks/${taskId}/cancel`, {
      token: operator,
      body: { reason: 'wrong pool' },
    });
    expect(cancel.status).toBe(202);
    const gpuNodes = ['gpu-1', 'gpu-2'];
    const [cancelRow, acceptedRow] = await auditOf(`task=${taskId}`);
    expect(acceptedRow).toMatchObject({
      action: 'cordon',
      decision: 'allowed',
      nodes: gpuNodes,
      selector: 'pool=gpu',
      reason: 'firmware',
      cluster: 'prod',
    });
    expect(cancelRow).toMatchObject({
      action: 'cancel',
      userId: 'otto',
      decision: 'allowed',
      nodes: gpuNodes,
      selector: 'pool=gpu',
      reason: 'wrong pool',
      cluster: 'prod',
    });
    const refusedRow = (await auditOf('user=vera&action=cordon')).find((row) => row.reason === 'curious');
    expect(refusedRow).toMatchObject({
      decision: 'denied',
      rule: 'policy.cordonRole',
      nodes: gpuNodes,
      selector: 'pool=gpu',
      cluster: 'prod',
    });
    const events = await producer.store.readTask(taskId);
    expect(events.find((event) => event.type === 'CancelRequested')?.data).toEqual({
      by: 'otto',
      reason: 'wrong pool',
    });
  });

  it('is for admins only, filters by user, action, node and time, and pages', async () => {
    const refused = await api(gateway, 'GET', '/api/v1/audit', { token: operator });
    expect(refused.status).toBe(403);
    expect(refused.body.rule).toBe('audit.adminOnly');
    const since = new Date(Date.now() - 60_000).toISOString();
    for (const node of ['node-p1', 'node-p2', 'node-p3']) {
      expect((await post(otherOperator, { action: 'uncordon', nodes: [node] })).status).toBe(202);
    }
    expect((await auditOf('user=olga&action=uncordon')).map((row) => row.nodes[0])).toEqual([
      'node-p3',
      'node-p2',
      'node-p1',
    ]);
    expect((await auditOf('node=node-p2')).map((row) => row.userId)).toEqual(['olga']);
    expect(await auditOf(`user=olga&action=uncordon&since=${encodeURIComponent(since)}`)).toHaveLength(3);
    expect(await auditOf(`user=olga&until=${encodeURIComponent(since)}`)).toHaveLength(0);
    const first = await api(gateway, 'GET', '/api/v1/audit?user=olga&action=uncordon&limit=2', {
      token: admin,
    });
    expect(first.body.entries).toHaveLength(2);
    const rest = await api(
      gateway,
      'GET',
      `/api/v1/audit?user=olga&action=uncordon&limit=2&before=${first.body.nextCursor}`,
      { token: admin },
    );
    expect(rest.body.entries.map((row: ResponseBody) => row.nodes[0])).toEqual(['node-p1']);
    expect(rest.body.nextCursor).toBeNull();
    const bad = await api(gateway, 'GET', '/api/v1/audit?since=yesterday', { token: admin });
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('querystring.since');
  });
});

describe('GET /api/v1/whoami', () => {
  it('names the caller, the role and the actions the policy allows it; without a token, nobody', async () => {
    expect((await api(gateway, 'GET', '/api/v1/whoami')).body).toEqual({ signedIn: false });
    expect((await api(gateway, 'GET', '/api/v1/whoami', { token: 'not-a-token' })).status).toBe(401);
    const whoami = async (token: string) => (await api(gateway, 'GET', '/api/v1/whoami', { token })).body;
    expect(await whoami(viewer)).toMatchObject({
      signedIn: true,
      userId: 'vera',
      role: 'viewer',
      actions: [],
      cancelsAnyTask: false,
      seesAllTasks: true,
    });
    expect(await whoami(operator)).toMatchObject({
      userId: 'otto',
      role: 'operator',
      actions: ['cordon', 'uncordon', 'label', 'taint'],
      protectedKeys: false,
      cancelsAnyTask: false,
      readsAudit: false,
    });
    expect(await whoami(admin)).toMatchObject({
      role: 'admin',
      actions: ['cordon', 'uncordon', 'drain', 'label', 'taint'],
      protectedKeys: true,
      protectedPrefixes: expect.arrayContaining(['kubernetes.io/']),
      cancelsAnyTask: true,
      readsAudit: true,
    });
  });
});

import { loadConfig, type NodebatchConfig } from '@nodebatch/config';
import { NodebatchClient } from '@nodebatch/client';
import type { TaskState } from '@nodebatch/progress';
import { startGateway, type GatewayHandle } from '@nodebatch/gateway';
import { startFakeKubeApi, type FakeKubeApi } from '@nodebatch/kube/testing';
import { createTestDatabase, uniqueName, type TestDatabase } from '@nodebatch/testkit';
import { startWorker, type WorkerHandle } from '@nodebatch/worker';
import pino from 'pino';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JWT_SECRET, postJson, tokenFor } from './services.js';

/**
 * Two named clusters, each a fake Kubernetes API server with its own nodes
 * (one node name exists in both), and a simulated one. One gateway knows all
 * three; each worker holds the credentials of some of them only.
 */
let db: TestDatabase;
let east: FakeKubeApi;
let west: FakeKubeApi;
let gateway: GatewayHandle;
let eastWorker: WorkerHandle;
let westWorker: WorkerHandle | undefined;
let client: NodebatchClient;
let token: string;
const queueName = uniqueName('mcq');
const logger = pino({ level: process.env.NODEBATCH_TEST_LOG_LEVEL ?? 'silent' });

/** The configuration as the environment gives it; `missing` clusters point at a kubeconfig this process lacks. */
function configWith(missing: 'east' | 'west' | 'none'): NodebatchConfig {
  const kubeconfig = (name: 'east' | 'west', api: FakeKubeApi) =>
    name === missing ? `/nonexistent/${name}.kubeconfig` : api.kubeconfigPath;
  return loadConfig({
    env: {
      DATABASE_URL: db.url,
      PROGRESS_NOTIFY_TYPE: 'postgres',
      AUTH_JWT_SECRET: JWT_SECRET,
      PORT: '0',
      QUEUE_NAME: queueName,
      LOG_LEVEL: 'silent',
      NODEBATCH_CLUSTERS: [
        `east;kubeconfig=${kubeconfig('east', east)};default`,
        `west;kubeconfig=${kubeconfig('west', west)}`,
        'lab;mode=simulated',
      ].join(','),
      NODEBATCH_SIM_NODES: '3',
    },
    cwd: '/',
  }).config;
}

async function finished(taskId: string): Promise<TaskState> {
  await lastValueFrom(client.watchTask(taskId), { defaultValue: undefined });
  return client.getTask(taskId);
}

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'e2e_clusters' });
  [east, west] = await Promise.all([
    startFakeKubeApi({ nodes: ['east-1', 'east-2', 'shared-1'] }),
    startFakeKubeApi({ nodes: ['west-1', 'shared-1'] }),
  ]);
  gateway = await startGateway({ config: configWith('none'), logger, host: '127.0.0.1' });
  // This worker can reach east and the simulated lab, not west.
  eastWorker = await startWorker({
    config: configWith('west'),
    logger,
    health: { port: 0, host: '127.0.0.1' },
  });
  token = await tokenFor('ada', 'admin');
  client = new NodebatchClient({ url: gateway.url, token });
}, 120_000);

afterAll(async () => {
  await westWorker?.close({ graceMs: 1000 });
  await eastWorker?.close({ graceMs: 1000 });
  await gateway?.close();
  await Promise.all([east?.close(), west?.close()]);
  await db?.drop();
});

const patchesOf = (api: FakeKubeApi, node: string) => api.requestsTo('PATCH', `/api/v1/nodes/${node}`);

describe('several named clusters', () => {
  it('lists each cluster’s own nodes, the default one when none is named', async () => {
    const names = (nodes: { name: string }[]) => nodes.map((node) => node.name);
    expect(names(await client.listNodes({ cluster: 'west' }))).toEqual(['shared-1', 'west-1']);
    expect(names(await client.listNodes())).toEqual(['east-1', 'east-2', 'shared-1']);
    const page = await fetch(`${gateway.url}/api/v1/nodes?cluster=lab`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await page.json()).toMatchObject({ cluster: 'lab', simulated: true, total: 3 });
  });

  it('lists the configured clusters with their mode and which one is the default, to signed-in callers only', async () => {
    const answer = await fetch(`${gateway.url}/api/v1/clusters`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({
      clusters: [
        { name: 'east', mode: 'kubernetes', default: true },
        { name: 'west', mode: 'kubernetes', default: false },
        { name: 'lab', mode: 'simulated', default: false },
      ],
    });
    expect((await fetch(`${gateway.url}/api/v1/clusters`)).status).toBe(401);
  });

  it('refuses an unknown cluster with 400 naming the known ones, for batches and the inventory', async () => {
    const batch = await postJson(`${gateway.url}/api/v1/batches`, token, {
      action: 'cordon',
      nodes: ['shared-1'],
      cluster: 'north',
    });
    expect(batch.status).toBe(400);
    expect(batch.body.message).toBe('body.cluster: unknown cluster "north"; known clusters: east, west, lab');
    const nodes = await fetch(`${gateway.url}/api/v1/nodes?cluster=north`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(nodes.status).toBe(400);
    expect(((await nodes.json()) as { message: string }).message).toBe(
      'cluster: unknown cluster "north"; known clusters: east, west, lab',
    );
  });

  it('runs each batch against its own cluster’s API server only; a worker takes only the clusters it can reach', async () => {
    east.clearRequests();
    west.clearRequests();
    // West's batch is queued first; the only worker cannot reach west, so it must leave it queued.
    const { taskId: westTask } = await client.submitBatch({
      action: 'cordon',
      nodes: ['shared-1'],
      cluster: 'west',
    });
    const { taskId: eastTask } = await client.submitBatch({ action: 'cordon', nodes: ['shared-1'] });

    const eastState = await finished(eastTask);
    expect(eastState).toMatchObject({ status: 'completed', cluster: 'east', clusterMode: 'kubernetes' });
    expect(patchesOf(east, 'shared-1')).toHaveLength(1);
    expect(east.nodes.get('shared-1')?.spec.unschedulable).toBe(true);
    expect(west.requests).toEqual([]);
    const waiting = await client.getTask(westTask);
    expect(waiting).toMatchObject({ status: 'pending', cluster: 'west', workerAttempts: 0 });

    // A worker with west's credentials (and not east's) picks it up.
    westWorker = await startWorker({ config: configWith('east'), logger });
    const westState = await finished(westTask);
    expect(westState).toMatchObject({ status: 'completed', cluster: 'west', clusterMode: 'kubernetes' });
    expect(patchesOf(west, 'shared-1')).toHaveLength(1);
    expect(west.nodes.get('shared-1')?.spec.unschedulable).toBe(true);
    expect(patchesOf(east, 'shared-1')).toHaveLength(1);
    const started = (await lastEvents(westTask)).find((event) => event.type === 'TaskStarted');
    expect(started?.data).toMatchObject({ cluster: 'west', clusterMode: 'kubernetes' });
    const listed = await client.listTasks();
    expect(
      listed.filter((task) => [westTask, eastTask].includes(task.taskId)).map((task) => task.cluster),
    ).toEqual(['east', 'west']);
  });

  it('has its health probes watch the consumer of each cluster the worker serves', async () => {
    for (const [path, check] of [
      ['/healthz', 'consumer'],
      ['/readyz', 'queue'],
    ] as const) {
      const response = await fetch(`${eastWorker.healthUrl}${path}`);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ reason: null, checks: { [check]: { ok: true } } });
    }
    expect(eastWorker.health.liveness().ok).toBe(true);
  });

  it('records a batch on the simulated cluster as simulated, in its events and the task', async () => {
    const eastRequests = east.requests.length;
    const westRequests = west.requests.length;
    const { taskId } = await client.submitBatch({ action: 'cordon', nodes: ['sim-node-1'], cluster: 'lab' });
    const state = await finished(taskId);
    expect(state).toMatchObject({ status: 'completed', cluster: 'lab', clusterMode: 'simulated' });
    const started = (await lastEvents(taskId)).find((event) => event.type === 'TaskStarted');
    expect(started?.data).toMatchObject({ cluster: 'lab', clusterMode: 'simulated' });
    expect(east.requests.length).toBe(eastRequests);
    expect(west.requests.length).toBe(westRequests);
  });
});

/** Every event of an ended task, read through the gateway's stream. */
function lastEvents(taskId: string) {
  return lastValueFrom(client.watchTask(taskId).pipe(toArray()));
}

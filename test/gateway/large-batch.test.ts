import { recordEventStream } from '@nodebatch/client/testing';
import { loadConfig } from '@nodebatch/config';
import { startGateway } from '@nodebatch/gateway';
import type { GatewayHandle } from '@nodebatch/gateway';
import { KubernetesNodeInventory, createNodeOperator } from '@nodebatch/kube';
import { startFakeKubeApi } from '@nodebatch/kube/testing';
import type { FakeKubeApi } from '@nodebatch/kube/testing';
import { createTestDatabase, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { startWorker } from '@nodebatch/worker';
import type { WorkerHandle } from '@nodebatch/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { JWT_SECRET, postJson, tokenFor } from './services.js';

/**
 * The largest batch the API accepts (LIMIT_BATCH_NODES, 5,000) with the
 * longest node names a cloud gives (ip-10-0-12-34.eu-west-1.compute.internal)
 * is stored, run by a real worker against a Kubernetes API server with that
 * many nodes, and streamed to the end.
 */
const NODES = Array.from(
  { length: 5000 },
  (_, i) => `ip-10-0-${i >> 8}-${i & 255}.eu-west-1.compute.internal`,
);

let db: TestDatabase;
let fake: FakeKubeApi;
let gateway: GatewayHandle;
let worker: WorkerHandle;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'e2e_large' });
  fake = await startFakeKubeApi({ nodes: NODES });
  const config = loadConfig({
    env: {
      DATABASE_URL: db.url,
      PROGRESS_NOTIFY_TYPE: 'postgres',
      AUTH_JWT_SECRET: JWT_SECRET,
      QUEUE_NAME: uniqueName('e2e_large_q'),
      PORT: '0',
      KUBECONFIG: fake.kubeconfigPath,
    },
    cwd: '/nonexistent',
  }).config;
  const logger = pino({ level: 'warn' });
  gateway = await startGateway({
    config,
    logger,
    host: '127.0.0.1',
    // The single cluster's name, the one the worker's queue has too.
    nodes: new KubernetesNodeInventory(fake.kubeConfig()),
  });
  worker = await startWorker({
    config,
    logger,
    operator: createNodeOperator({ cluster: config.cluster, logger }),
  });
}, 120_000);

afterAll(async () => {
  await worker?.close({ graceMs: 1000 });
  await gateway?.close();
  await fake?.close();
  await db?.drop();
}, 60_000);

it('runs a 5,000-node batch with long node names through a worker to the end, and streams every node', async () => {
  const token = await tokenFor('big');
  const submitted = await postJson(`${gateway.url}/api/v1/batches`, token, {
    action: 'cordon',
    nodes: NODES,
    concurrency: 100,
  });
  expect(submitted.status).toBe(202);
  const taskId = submitted.body.taskId as string;

  const stream = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(await stream.ended).toBe(true);
  const events = stream.messages.map((message) => JSON.parse(message.data) as { type: string; seq: number });
  expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
  expect(events[0]?.type).toBe('TaskCreated');
  expect(events.at(-1)?.type).toBe('TaskCompleted');
  expect(events.filter((event) => event.type === 'NodeSucceeded')).toHaveLength(NODES.length);

  const state = await (
    await fetch(`${gateway.url}/api/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${token}` } })
  ).json();
  expect(state).toMatchObject({ total: 5000, status: 'completed', outcome: { type: 'TaskCompleted' } });
  expect(NODES.filter((node) => fake.nodes.get(node)?.spec.unschedulable !== true)).toEqual([]);
}, 600_000);

import { readFileSync } from 'node:fs';
import { recordEventStream } from '@nodebatch/client/testing';
import type { EventStreamRecording } from '@nodebatch/client/testing';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import {
  SERVICES_START_TIMEOUT_MS,
  SERVICES_STOP_TIMEOUT_MS,
  postJson,
  serviceEnv,
  spawnService,
  tokenFor,
} from './services.js';
import type { ServiceProcess } from './services.js';

const CLIENTS = 2000;
const NODES = Array.from({ length: 20 }, (_, i) => `sim-node-${i + 1}`);

let db: TestDatabase;
let worker: ServiceProcess;
let gateway: ServiceProcess;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'e2e_many' });
  const env = serviceEnv(db.url, {
    REDIS_URL: sharedRedisUrl(),
    QUEUE_NAME: uniqueName('e2e_many_q'),
    NODEBATCH_SIM_LATENCY_MS: '200',
    WORKER_SHUTDOWN_GRACE_MS: '1000',
    // One user opens every stream here; the per-user cap (100 by default) is tested in the gateway's limits test.
    LIMIT_STREAMS_PER_USER: String(CLIENTS),
  });
  worker = await spawnService('worker', env);
  // The worker's own listener, counted before the gateway adds its one.
  await vi.waitFor(async () => expect((await listenerConnections()).listeners).toBe(1), { timeout: 30_000 });
  gateway = await spawnService('gateway', env);
}, SERVICES_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([gateway?.stop(), worker?.stop()]);
  await db?.drop();
}, SERVICES_STOP_TIMEOUT_MS);

function rssMiB(pid: number): number {
  const kib = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return Math.round((kib / 1024) * 10) / 10;
}

async function listenerConnections(): Promise<{ listeners: number; total: number }> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const result = await client.query<{ listeners: string; total: string }>(
      `SELECT count(*) FILTER (WHERE application_name = 'nodebatch-listener') AS listeners, count(*) AS total
         FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [db.name],
    );
    return { listeners: Number(result.rows[0]!.listeners), total: Number(result.rows[0]!.total) };
  } finally {
    await client.end();
  }
}

it(`${CLIENTS} concurrent SSE clients on one gateway all get the whole task over one listener connection`, async () => {
  const url = gateway.ready.gatewayUrl as string;
  const token = await tokenFor('watcher');
  const before = { rss: rssMiB(gateway.pid), ...(await listenerConnections()) };
  const submitted = await postJson(`${url}/api/v1/batches`, token, {
    action: 'cordon',
    nodes: NODES,
    concurrency: 2,
  });
  expect(submitted.status).toBe(202);
  const taskId = submitted.body.taskId as string;

  const streams: EventStreamRecording[] = await Promise.all(
    Array.from({ length: CLIENTS }, () =>
      recordEventStream(`${url}/api/v1/tasks/${taskId}/events`, {
        headers: { authorization: `Bearer ${token}` },
      }),
    ),
  ).catch((err: unknown) => {
    // Show why the gateway refused, from its own log.
    console.log(
      gateway
        .output()
        .split('\n')
        .filter((l) => l.includes('"level":50'))
        .slice(0, 3)
        .join('\n'),
    );
    throw err;
  });
  const connected = { rss: rssMiB(gateway.pid), ...(await listenerConnections()) };
  const endings = await Promise.all(streams.map((stream) => stream.ended));
  const after = { rss: rssMiB(gateway.pid) };

  expect(endings.every(Boolean)).toBe(true);
  const expected = streams[0]!.messages.map((m) => Number(m.id));
  expect(expected).toEqual(Array.from({ length: expected.length }, (_, i) => i + 1));
  expect(streams[0]!.messages.at(-1)!.event).toBe('TaskCompleted');
  for (const stream of streams) expect(stream.messages.map((m) => Number(m.id))).toEqual(expected);
  // The worker's listener and exactly one of the gateway, however many clients.
  expect(before.listeners).toBe(2);
  expect(connected.listeners).toBe(2);

  process.stdout.write(
    `${JSON.stringify({
      measurement: 'gateway-sse-clients',
      clients: CLIENTS,
      eventsPerClient: expected.length,
      gatewayRssMiB: { before: before.rss, with2000Clients: connected.rss, afterAllEnded: after.rss },
      databaseConnections: { before: before.total, with2000Clients: connected.total },
      listenerConnections: { worker: 1, gateway: connected.listeners - 1 },
    })}\n`,
  );
});

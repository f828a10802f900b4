import { recordEventStream } from '@nodebatch/client/testing';
import { createTestDatabase, startRedisCluster, uniqueName } from '@nodebatch/testkit';
import type { RedisCluster, RedisServer, TestDatabase } from '@nodebatch/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  SERVICES_START_TIMEOUT_MS,
  SERVICES_STOP_TIMEOUT_MS,
  postJson,
  serviceEnv,
  spawnService,
  tokenFor,
  watchOverWebSocket,
} from './services.js';
import type { ServiceProcess } from './services.js';

/**
 * A worker and a gateway as separate processes on a Redis Cluster of three
 * masters (REDIS_CLUSTER_NODES): the BullMQ queue and the progress hints
 * (sharded Pub/Sub) both go through it, and one master restarts mid-batch.
 */

const NODES = Array.from({ length: 40 }, (_, i) => `sim-node-${i + 1}`);
const PROGRESS_CHANNEL = 'nodebatch:progress';
const WAIT = { timeout: 60_000, interval: 100 };

let cluster: RedisCluster;
let db: TestDatabase;
let worker: ServiceProcess;
let gateway: ServiceProcess;
let token: string;

const gatewayUrl = () => gateway.ready.gatewayUrl as string;

beforeAll(async () => {
  [cluster, db] = await Promise.all([startRedisCluster(), createTestDatabase({ prefix: 'e2e_rc' })]);
  const env = serviceEnv(db.url, {
    REDIS_CLUSTER_NODES: cluster.nodes,
    PROGRESS_NOTIFY_TYPE: 'redis',
    PROGRESS_FALLBACK_AFTER: '1000',
    PROGRESS_POLL_INTERVAL: '200',
    QUEUE_NAME: uniqueName('e2e_rc_q'),
    NODEBATCH_SIM_NODES: '60',
    // 40 nodes, 2 at a time, 250 ms each: about 5 s, long enough to restart a master in the middle.
    NODEBATCH_SIM_LATENCY_MS: '250',
    WORKER_SHUTDOWN_GRACE_MS: '1000',
    LOG_LEVEL: 'info',
  });
  worker = await spawnService('worker', env);
  gateway = await spawnService('gateway', env);
  token = await tokenFor('operator');
}, SERVICES_START_TIMEOUT_MS);

afterAll(async () => {
  // After the master restart BullMQ's blocking fetch may never settle; the
  // worker's forced close ends that wait after WORKER_SHUTDOWN_GRACE_MS plus
  // its hand-back margin, so the stop completes instead of hanging this hook.
  await Promise.all([gateway?.stop(), worker?.stop()]);
  await db?.drop();
  await cluster?.destroy();
}, SERVICES_STOP_TIMEOUT_MS);

async function submit(): Promise<string> {
  const response = await postJson(`${gatewayUrl()}/api/v1/batches`, token, {
    action: 'cordon',
    nodes: NODES,
    concurrency: 2,
  });
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return response.body.taskId as string;
}

function followOverSse(taskId: string) {
  return recordEventStream(`${gatewayUrl()}/api/v1/tasks/${taskId}/events`, {
    headers: { authorization: `Bearer ${token}` },
  });
}

const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** The gateway's notifier gauges: which transport is active, and whether it is healthy. */
async function notifierState(): Promise<{ redisActive: boolean; healthy: boolean }> {
  const text = await (await fetch(`${gatewayUrl()}/metrics`)).text();
  return {
    redisActive: /nodebatch_notifier_active_transport\{[^}]*transport="redis"[^}]*\} 1\b/.test(text),
    healthy: /^nodebatch_notifier_healthy 1\b/m.test(text),
  };
}

async function clusterStateSeenBy(master: RedisServer): Promise<string | undefined> {
  const client = new Redis(master.url, { maxRetriesPerRequest: 1 });
  try {
    return /cluster_state:(\w+)/.exec(String(await client.call('CLUSTER', 'INFO')))?.[1];
  } finally {
    client.disconnect();
  }
}

async function masterOfChannel(): Promise<RedisServer> {
  const client = new Redis(cluster.masters[0]!.url, { maxRetriesPerRequest: 1 });
  try {
    return await cluster.masterOf(Number(await client.call('CLUSTER', 'KEYSLOT', PROGRESS_CHANNEL)));
  } finally {
    client.disconnect();
  }
}

describe('worker and gateway on a Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  it('runs a batch through the cluster queue, and its progress reaches SSE and WebSocket over sharded Pub/Sub: every event once, in order', async () => {
    expect(await notifierState()).toEqual({ redisActive: true, healthy: true });
    const taskId = await submit();
    const [sse, wsEvents] = await Promise.all([
      followOverSse(taskId),
      watchOverWebSocket(gatewayUrl(), token, taskId),
    ]);
    expect(await sse.ended).toBe(true);
    const seqs = sse.messages.map((message) => Number(message.id));
    expect(seqs.length).toBeGreaterThanOrEqual(2 + 2 * NODES.length + 1);
    expect(seqs).toEqual(oneTo(seqs.length));
    expect(wsEvents.map((event) => event.seq)).toEqual(oneTo(seqs.length));
    expect(wsEvents.at(-1)).toMatchObject({ type: 'TaskCompleted', data: { succeeded: NODES.length } });
    // Hints went over sharded Pub/Sub on the master of the channel's slot: one subscription per process.
    const owner = await masterOfChannel();
    const client = new Redis(owner.url);
    try {
      expect(await client.call('PUBSUB', 'SHARDNUMSUB', PROGRESS_CHANNEL)).toEqual([PROGRESS_CHANNEL, 2]);
    } finally {
      client.disconnect();
    }
    // The queue's keys are under the {nodebatch} hash tag: all on one master (one slot).
    const queueKeys = await Promise.all(
      cluster.masters.map(async (master) => {
        const node = new Redis(master.url);
        try {
          return (await node.keys('{nodebatch}:*')).length;
        } finally {
          node.disconnect();
        }
      }),
    );
    expect(queueKeys.filter((count) => count > 0)).toHaveLength(1);
    expect(gateway.output()).toContain('sharded Pub/Sub (SPUBLISH/SSUBSCRIBE)');
  });

  it('when the master of the progress channel restarts mid-batch, every subscriber still gets every event once, in order, and push delivery comes back', async () => {
    const owner = await masterOfChannel();
    const other = cluster.masters.find((master) => master !== owner)!;
    const taskId = await submit();
    const sse = await followOverSse(taskId);
    const ws = watchOverWebSocket(gatewayUrl(), token, taskId);
    await sse.waitFor((messages) => messages.length >= 5);

    await owner.stop();
    // A real outage: the other masters mark it failed and the cluster refuses commands.
    await vi.waitFor(async () => expect(await clusterStateSeenBy(other)).toBe('fail'), WAIT);
    await vi.waitFor(async () => expect((await notifierState()).redisActive).toBe(false), WAIT);
    await owner.start();
    await cluster.waitUntilOk();

    expect(await sse.ended).toBe(true);
    const seqs = sse.messages.map((message) => Number(message.id));
    expect(seqs.length).toBeGreaterThanOrEqual(2 + 2 * NODES.length + 1);
    expect(seqs).toEqual(oneTo(seqs.length));
    const wsEvents = await ws;
    expect(wsEvents.map((event) => event.seq)).toEqual(oneTo(seqs.length));
    expect(wsEvents.at(-1)).toMatchObject({ type: 'TaskCompleted', data: { succeeded: NODES.length } });

    // Back on the Redis transport, subscribed on the restarted master.
    await vi.waitFor(
      async () => expect(await notifierState()).toEqual({ redisActive: true, healthy: true }),
      WAIT,
    );
    const client = new Redis(owner.url);
    try {
      await vi.waitFor(
        async () =>
          expect(await client.call('PUBSUB', 'SHARDNUMSUB', PROGRESS_CHANNEL)).toEqual([PROGRESS_CHANNEL, 2]),
        WAIT,
      );
    } finally {
      client.disconnect();
    }
  });
});

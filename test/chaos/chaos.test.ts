import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { HintKey, isTerminalType, type StoredEvent, type TransportType } from '@nodebatch/progress';
import { createEventStore } from '@nodebatch/event-store';
import { freePort, startPostgres, startRedis } from '@nodebatch/testkit';
import type { PostgresServer, RedisServer } from '@nodebatch/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { postJson, serviceEnv, spawnService, tokenFor, type ServiceProcess } from '../gateway/services.js';
import { sseSubscriber, wsSubscriber, type ChaosSubscriber } from './subscribers.js';

/**
 * Every delivery guarantee at once (docs/invariants.md): 20 tasks of mixed
 * actions run through 2 workers and 2 gateways, each a process of its own on
 * a private PostgreSQL and a private Redis, followed by 50 SSE and WebSocket
 * subscribers that reconnect as browsers do. While they run, the test kills a
 * worker, restarts a gateway, stops PostgreSQL for 10 s, restarts Redis,
 * freezes a worker past its job lock, and sends forged and malformed
 * notifications on both channels. Then it compares what every subscriber
 * received with the log. Workers and gateways share a hint key, so their
 * own notifications are delivered authenticated while the forgeries, unsigned
 * or signed with another key, meet the signed path.
 */

const TASKS = 20;
const NODES_PER_TASK = 12;
const SUBSCRIBERS = 50;
const LOCK_MS = 3_000;
const ACTIONS = ['drain', 'cordon', 'label', 'taint', 'uncordon'] as const;
const TERMINAL_WAIT = { timeout: 600_000, interval: 500 };

interface Run {
  pg: PostgresServer;
  redis: RedisServer;
  pool: pg.Pool;
  services: ServiceProcess[];
  subscribers: ChaosSubscriber[];
}

let run: Run | undefined;

afterEach(async () => {
  const current = run;
  run = undefined;
  if (!current) return;
  current.subscribers.forEach((subscriber) => subscriber.stop());
  await Promise.all(current.services.map((service) => service.kill()));
  await current.pool.end().catch(() => undefined);
  await Promise.all([current.pg.destroy(), current.redis.destroy()]);
}, 120_000);

function paramsFor(action: (typeof ACTIONS)[number], index: number): Record<string, unknown> {
  if (action === 'label') return { set: { 'chaos.example.com/run': `r${index}` } };
  if (action === 'taint')
    return { add: [{ key: 'chaos.example.com/run', value: `r${index}`, effect: 'NoSchedule' }] };
  if (action === 'drain') return { force: true, deleteEmptyDirData: true };
  return {};
}

async function runningTasks(pool: pg.Pool, taskIds: readonly string[]): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM unnest($1::text[]) AS t(id)
      WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.task_id = t.id
                          AND e.type IN ('TaskCompleted', 'TaskFailed', 'TaskCancelled'))`,
    [taskIds],
  );
  return Number(rows[0]?.n ?? 0);
}

async function eventCount(pool: pg.Pool, taskIds: readonly string[]): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    'SELECT count(*) AS n FROM events WHERE task_id = ANY($1)',
    [taskIds],
  );
  return Number(rows[0]?.n ?? 0);
}

/** The processes' shared hint key; the forger has a key of its own. */
const HINT_KEY = randomBytes(32).toString('base64');
const FORGER_KEY = new HintKey(randomBytes(32));

/**
 * A forged terminal event for the seq after `taskId`'s head, unsigned and
 * signed with a key that is not the processes', and junk, on both channels.
 */
async function injectForgeries(pool: pg.Pool, redisUrl: string, taskId: string): Promise<void> {
  const { rows } = await pool.query<{ head: string | null }>(
    'SELECT max(seq) AS head FROM events WHERE task_id = $1',
    [taskId],
  );
  const seq = Number(rows[0]?.head ?? 0) + 1;
  const forged = {
    seq,
    position: 999_999_999,
    type: 'TaskCompleted',
    time: new Date().toISOString(),
    data: { succeeded: NODES_PER_TASK, failed: 0, skipped: 0 },
  };
  const mac = FORGER_KEY.sign({ taskId, seq, events: [{ taskId, ...forged } as StoredEvent] });
  for (const payload of [
    JSON.stringify({ taskId, seq, events: [forged] }),
    JSON.stringify({ taskId, seq, events: [forged], mac }),
    'not json',
    '{"taskId":1}',
  ])
    await pool.query('SELECT pg_notify($1, $2)', ['nodebatch_progress', payload]);
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    for (const payload of [
      JSON.stringify({ v: 1, kind: 'events', taskId, seq, events: [{ taskId, ...forged }] }),
      JSON.stringify({ v: 1, kind: 'events', taskId, seq, events: [{ taskId, ...forged }], mac }),
      '{"v":1,"kind":"events"}',
      'garbage',
    ])
      await redis.publish('nodebatch:progress', payload);
  } finally {
    redis.disconnect();
  }
}

async function chaosRun(transport: TransportType): Promise<void> {
  const pgServer = await startPostgres();
  const redisServer = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  const pool = new pg.Pool({ connectionString: pgServer.url, max: 2 });
  pool.on('error', () => undefined);
  const current: Run = { pg: pgServer, redis: redisServer, pool, services: [], subscribers: [] };
  run = current;

  const [portA, portB] = [await freePort(), await freePort()];
  const env = serviceEnv(pgServer.url, {
    REDIS_URL: redisServer.url,
    PROGRESS_NOTIFY_TYPE: transport,
    PROGRESS_HINT_KEY: HINT_KEY,
    QUEUE_NAME: 'chaos',
    NODEBATCH_SIM_NODES: String(TASKS * NODES_PER_TASK),
    // 12 nodes one at a time, 2 s each: a task runs for about 25 s, and with
    // 2 jobs per worker the 20 tasks take minutes, so every fault lands mid-run.
    NODEBATCH_SIM_LATENCY_MS: '2000',
    WORKER_SHUTDOWN_GRACE_MS: '1000',
    WORKER_JOB_CONCURRENCY: '2',
    LIMIT_STREAMS_PER_USER: '1000',
    LIMIT_SUBSCRIBES_PER_MINUTE: '100000',
    LIMIT_BATCHES_PER_MINUTE: '1000',
  });
  const workerArgs = ['--lock-duration-ms', String(LOCK_MS), '--stalled-interval-ms', '500'];
  const spawnWorker = async () => {
    const worker = await spawnService('worker', env, { args: workerArgs });
    current.services.push(worker);
    return worker;
  };
  const spawnGateway = async (port: number) => {
    const gateway = await spawnService('gateway', { ...env, PORT: String(port) });
    current.services.push(gateway);
    return gateway;
  };
  // The first worker runs the migrations the others then find done.
  const worker1 = await spawnWorker();
  const [worker2, gatewayA] = await Promise.all([spawnWorker(), spawnGateway(portA), spawnGateway(portB)]);
  const urls = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`];
  const token = await tokenFor('chaos-admin', 'admin');

  const taskIds: string[] = [];
  for (let i = 0; i < TASKS; i++) {
    const action = ACTIONS[i % ACTIONS.length]!;
    const nodes = Array.from({ length: NODES_PER_TASK }, (_, n) => `sim-node-${i * NODES_PER_TASK + n + 1}`);
    const response = await postJson(`${urls[i % 2]}/api/v1/batches`, token, {
      action,
      nodes,
      concurrency: 1,
      params: paramsFor(action, i),
    });
    expect(response.status, JSON.stringify(response.body)).toBe(202);
    taskIds.push(response.body.taskId as string);
  }
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const options = { taskId: taskIds[i % TASKS]!, urls: i % 4 < 2 ? urls : [...urls].reverse(), token };
    current.subscribers.push(i % 2 === 0 ? sseSubscriber(options) : wsSubscriber(options));
  }

  // Each fault waits for the log to grow, so it lands while tasks run; the
  // number of tasks still running at each one is asserted below.
  const runningAtFault: Record<string, number> = {};
  let checkpoint = await eventCount(pool, taskIds);
  const fault = async (name: string, inject: () => Promise<void>) => {
    const target = checkpoint + 8;
    await vi.waitFor(async () => expect(await eventCount(pool, taskIds)).toBeGreaterThanOrEqual(target), {
      timeout: 120_000,
      interval: 100,
    });
    runningAtFault[name] = await runningTasks(pool, taskIds);
    const started = Date.now();
    await inject();
    checkpoint = await eventCount(pool, taskIds);
    console.log(
      `chaos ${transport}: ${name} with ${runningAtFault[name]} tasks running, ${Date.now() - started} ms`,
    );
  };
  const someRunningTask = async () => {
    for (const taskId of taskIds) if ((await runningTasks(pool, [taskId])) > 0) return taskId;
    return taskIds[0]!;
  };

  await fault('forged notifications', async () =>
    injectForgeries(pool, redisServer.url, await someRunningTask()),
  );
  await fault('worker SIGKILL', async () => {
    await worker1.kill();
    await spawnWorker();
  });
  await fault('gateway restart', async () => {
    await gatewayA.stop();
    await spawnGateway(portA);
  });
  await fault('PostgreSQL stopped 10 s', async () => {
    await pgServer.stop();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    await pgServer.start();
  });
  await fault('Redis restart', () => redisServer.restart());
  await fault('worker frozen past its lock', async () => {
    worker2.child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, LOCK_MS * 3));
    worker2.child.kill('SIGCONT');
  });
  await fault('forged notifications again', async () =>
    injectForgeries(pool, redisServer.url, await someRunningTask()),
  );

  await vi.waitFor(async () => expect(await runningTasks(pool, taskIds)).toBe(0), TERMINAL_WAIT);
  await Promise.all(current.subscribers.map((subscriber) => subscriber.done));

  const store = createEventStore({ pool });
  const logs = new Map<string, StoredEvent[]>();
  for (const taskId of taskIds) logs.set(taskId, await store.readTask(taskId));
  const statuses: Record<string, number> = {};
  for (const [taskId, log] of logs) {
    const terminals = log.filter((event) => isTerminalType(event.type));
    expect(terminals, `terminal events of ${taskId}`).toHaveLength(1);
    statuses[terminals[0]!.type] = (statuses[terminals[0]!.type] ?? 0) + 1;
    const finals = new Map<string, number>();
    for (const event of log)
      if (event.type === 'NodeSucceeded' || event.type === 'NodeFailed' || event.type === 'NodeSkipped')
        finals.set(event.data.node, (finals.get(event.data.node) ?? 0) + 1);
    expect(
      [...finals.values()].every((count) => count === 1),
      `node final states of ${taskId}`,
    ).toBe(true);
    if (terminals[0]!.type === 'TaskCompleted')
      expect(finals.size, `nodes of ${taskId}`).toBe(NODES_PER_TASK);
  }
  let deliveries = 0;
  for (const subscriber of current.subscribers) {
    // No gap, no duplicate, nothing that is not in the log: the very same events in the same order.
    expect(subscriber.received, `${subscriber.kind} subscriber of ${subscriber.taskId}`).toEqual(
      logs.get(subscriber.taskId),
    );
    deliveries += subscriber.received.length;
  }
  for (const [name, running] of Object.entries(runningAtFault))
    expect(running, `tasks running at ${name}`).toBeGreaterThan(0);

  const events = [...logs.values()].reduce((sum, log) => sum + log.length, 0);
  const reconnects = current.subscribers.reduce((sum, s) => sum + s.connections - 1, 0);
  console.log(
    `chaos ${transport}: ${TASKS} tasks ${JSON.stringify(statuses)}, ${events} events in the log, ` +
      `${SUBSCRIBERS} subscribers (${SUBSCRIBERS / 2} SSE, ${SUBSCRIBERS / 2} WebSocket), ${deliveries} deliveries, ` +
      `${reconnects} reconnects; tasks running at each fault ${JSON.stringify(runningAtFault)}`,
  );
}

describe('chaos: every stream equals the log through kills, restarts, outages, a frozen worker and forged notifications', () => {
  for (const transport of ['postgres', 'redis', 'polling'] as const) {
    it(`${transport} transport`, () => chaosRun(transport), 900_000);
  }
});

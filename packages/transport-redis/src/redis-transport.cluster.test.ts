import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventStore, runMigrations } from '@nodebatch/event-store';
import type { EventStore, Hint, NewEvent, TransportHealth } from '@nodebatch/progress';
import { createTestDatabase, startRedisCluster, uniqueName } from '@nodebatch/testkit';
import type { RedisCluster, RedisServer, TestDatabase } from '@nodebatch/testkit';
import { createRedisTransport } from './redis-transport.js';
import type { RedisTransport } from './redis-transport.js';

/**
 * The Redis transport on a real Redis Cluster of three masters: sharded
 * Pub/Sub on the master of the channel's slot, and a restart of that master.
 */

const WAIT = { timeout: 30_000, interval: 50 };

let cluster: RedisCluster;
let db: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [cluster, db] = await Promise.all([startRedisCluster(), createTestDatabase({ prefix: 'tredisc' })]);
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await runMigrations(pool);
  store = createEventStore({ pool });
}, 120_000);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
  await cluster?.destroy();
});

function newTransport(channel: string, options: { on?: RedisCluster; logger?: Logger } = {}): RedisTransport {
  const transport = createRedisTransport({
    redis: {},
    clusterNodes: (options.on ?? cluster).masters.map((master) => ({ host: '127.0.0.1', port: master.port })),
    store,
    channel,
    catchUpIntervalMs: 200,
    logger: options.logger ?? pino({ level: 'silent' }),
  });
  cleanups.push(() => transport.stop());
  return transport;
}

async function onNode<T>(master: RedisServer, run: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(master.url, { maxRetriesPerRequest: 1 });
  try {
    return await run(client);
  } finally {
    client.disconnect();
  }
}

async function slotOf(channel: string): Promise<number> {
  return onNode(cluster.masters[0]!, async (client) =>
    Number(await client.call('CLUSTER', 'KEYSLOT', channel)),
  );
}

function progress(done: number): NewEvent {
  return { type: 'NodeProgress', data: { node: 'node-a', done, total: 1000 } };
}

async function newTask(): Promise<string> {
  const taskId = randomUUID();
  await store.append(taskId, [
    { type: 'TaskCreated', data: { userId: 'u1', action: 'cordon', nodes: ['node-a'], params: {} } },
  ]);
  return taskId;
}

/**
 * A publishing and a subscribing transport on one channel, started, with the
 * subscriber watching a new task and recording its hints and health.
 */
async function startPair(channel: string, options: { on?: RedisCluster; logger?: Logger } = {}) {
  const publisher = newTransport(channel, { ...(options.on ? { on: options.on } : {}) });
  const subscriber = newTransport(channel, options);
  await Promise.all([publisher.start(), subscriber.start()]);
  const taskId = await newTask();
  const hints: Hint[] = [];
  const health: TransportHealth[] = [];
  let resyncs = 0;
  const subscriptions = [
    subscriber.hints$.subscribe((hint) => hints.push(hint)),
    subscriber.health$.subscribe((value) => health.push(value)),
    subscriber.resync$.subscribe(() => resyncs++),
  ];
  cleanups.push(async () => subscriptions.forEach((subscription) => subscription.unsubscribe()));
  subscriber.watch(taskId);
  return {
    publisher,
    subscriber,
    taskId,
    hints,
    health,
    resyncs: () => resyncs,
    append: async (done: number) => publisher.afterCommit(await store.append(taskId, [progress(done)])),
  };
}

/** The seqs of the hints that carried their events (came through Pub/Sub, not the position check). */
function pushedSeqs(hints: Hint[]): number[] {
  return hints.filter((hint) => hint.events !== undefined).map((hint) => hint.seq);
}

describe('redis transport on a Redis Cluster', () => {
  it('uses sharded Pub/Sub: only the master of the channel’s slot carries the subscription and the messages', async () => {
    const channel = uniqueName('progress');
    const owner = await cluster.masterOf(await slotOf(channel));
    const others = cluster.masters.filter((master) => master !== owner);
    const pair = await startPair(channel);
    expect(pair.publisher.pubsub).toBe('sharded');
    expect(pair.subscriber.pubsub).toBe('sharded');
    for (let done = 1; done <= 5; done++) await pair.append(done);
    await vi.waitFor(() => expect(pushedSeqs(pair.hints)).toEqual([2, 3, 4, 5, 6]), WAIT);

    const shardSubscribers = (master: RedisServer) =>
      onNode(master, (client) => client.call('PUBSUB', 'SHARDNUMSUB', channel));
    // Each transport (one per process) holds one subscription.
    expect(await shardSubscribers(owner)).toEqual([channel, 2]);
    for (const other of others) expect(await shardSubscribers(other)).toEqual([channel, 0]);
    // No classic PUBLISH anywhere: it would be broadcast to every node of the cluster.
    const publishes = (master: RedisServer) =>
      onNode(master, async (client) => {
        const stats = await client.info('commandstats');
        return {
          spublish: Number(/cmdstat_spublish:calls=(\d+)/.exec(stats)?.[1] ?? 0),
          publish: Number(/cmdstat_publish:calls=(\d+)/.exec(stats)?.[1] ?? 0),
        };
      });
    expect((await publishes(owner)).spublish).toBeGreaterThanOrEqual(5);
    for (const master of cluster.masters) expect((await publishes(master)).publish).toBe(0);
  });

  it('after the channel’s master restarts, the subscriber is back on sharded Pub/Sub and the position check covered the outage', async () => {
    const channel = uniqueName('progress');
    const owner = await cluster.masterOf(await slotOf(channel));
    const pair = await startPair(channel);
    await pair.append(1);
    await vi.waitFor(() => expect(pushedSeqs(pair.hints)).toEqual([2]), WAIT);

    await owner.stop();
    await vi.waitFor(() => expect(pair.health.at(-1)?.healthy).toBe(false), WAIT);
    // Appended while the master is away: the PUBLISH fails, the position check hints it.
    await pair.append(2);
    await vi.waitFor(() => expect(pair.hints.at(-1)?.seq).toBe(3), WAIT);
    expect(pair.publisher.failedPublishes).toBeGreaterThanOrEqual(1);

    await owner.start();
    await cluster.waitUntilOk();
    await vi.waitFor(() => expect(pair.health.at(-1)).toEqual({ healthy: true, reason: null }), WAIT);
    expect(pair.resyncs()).toBeGreaterThanOrEqual(1);
    // Pushed again, through the restarted master.
    await vi.waitFor(async () => {
      await pair.append(pair.hints.length + 10);
      expect(pushedSeqs(pair.hints).at(-1)).toBeGreaterThan(3);
    }, WAIT);
    expect(await onNode(owner, (client) => client.call('PUBSUB', 'SHARDNUMSUB', channel))).toEqual([
      channel,
      2,
    ]);
    const seqs = pair.hints.map((hint) => hint.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  }, 120_000);

  it('subscribes again when its connection drops while the cluster is down (another master stopped)', async () => {
    const channel = uniqueName('progress');
    const owner = await cluster.masterOf(await slotOf(channel));
    const other = cluster.masters.find((master) => master !== owner)!;
    const pair = await startPair(channel);

    // Another master stops: the cluster goes down while the channel's master keeps running.
    await other.stop();
    await vi.waitFor(
      () =>
        onNode(owner, async (client) =>
          expect(String(await client.call('CLUSTER', 'INFO'))).toContain('cluster_state:fail'),
        ),
      WAIT,
    );
    // Its subscriber connections drop; they reconnect to the channel's master, which still takes SSUBSCRIBE.
    await onNode(owner, (client) => client.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
    await vi.waitFor(() => expect(pair.health.at(-1)?.healthy).toBe(false), WAIT);
    expect(pair.health.at(-1)?.reason).toContain('subscriber connection');

    await other.start();
    await cluster.waitUntilOk();
    await vi.waitFor(() => expect(pair.health.at(-1)).toEqual({ healthy: true, reason: null }), WAIT);
    await pair.append(1);
    await vi.waitFor(() => expect(pushedSeqs(pair.hints)).toEqual([2]), WAIT);
  }, 120_000);

  it('falls back to classic Pub/Sub on a cluster without SPUBLISH (Redis before 7), and says so in its log', async () => {
    // A real cluster whose servers do not know SPUBLISH, as Redis 6 does not.
    const older = await startRedisCluster({ args: ['--rename-command', 'SPUBLISH', ''] });
    cleanups.push(() => older.destroy());
    const lines: { msg: string; pubsub?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const pair = await startPair(uniqueName('progress'), { on: older, logger });
    expect(pair.subscriber.pubsub).toBe('classic');
    expect(lines.find((line) => line.pubsub !== undefined)).toMatchObject({
      pubsub: 'classic',
      msg: expect.stringContaining('classic Pub/Sub'),
    });
    for (let done = 1; done <= 3; done++) await pair.append(done);
    // Classic PUBLISH from a Cluster client may enter at any master and cross
    // the cluster bus, so hints may arrive out of order (subscribers read what
    // they miss from the log): every append is announced, in whatever order.
    await vi.waitFor(
      () => expect([...pushedSeqs(pair.hints)].sort((a, b) => a - b)).toEqual([2, 3, 4]),
      WAIT,
    );
    expect(pair.publisher.failedPublishes).toBe(0);
  }, 120_000);
});

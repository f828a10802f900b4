import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { filter, firstValueFrom, lastValueFrom, take, timeout, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventStore, runMigrations } from '@nodebatch/event-store';
import type { EventStore, Hint, NewEvent, StoredEvent, TransportHealth } from '@nodebatch/progress';
import { ProgressStreams, TransportUnavailableError } from '@nodebatch/progress';
import { createTestDatabase, startRedis, uniqueName } from '@nodebatch/testkit';
import type { RedisServer, TestDatabase } from '@nodebatch/testkit';
import { createRedisTransport } from './redis-transport.js';
import type { RedisTransport, RedisTransportOptions } from './redis-transport.js';

/**
 * Fault injection on a private redis-server of this file: restarts, kills and
 * stops never touch the shared Redis other tests use.
 */
const WAIT = { timeout: 60_000, interval: 20 };

let db: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
let server: RedisServer;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [db, server] = await Promise.all([createTestDatabase({ prefix: 'tredisf' }), startRedis()]);
  pool = new pg.Pool({ connectionString: db.url, max: 8 });
  await runMigrations(pool);
  store = createEventStore({ pool });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await server?.destroy();
  await pool?.end();
  await db?.drop();
});

function privateRedis() {
  const url = new URL(server.url);
  // Reconnect quickly: the tests restart the server on purpose.
  return {
    host: url.hostname,
    port: Number(url.port),
    retryStrategy: (times: number) => Math.min(times * 20, 200),
  };
}

function newTransport(options: Partial<RedisTransportOptions> & { channel: string }): RedisTransport {
  const transport = createRedisTransport({
    redis: privateRedis(),
    store,
    logger: pino({ level: 'silent' }),
    catchUpIntervalMs: 250,
    ...options,
  });
  cleanups.push(() => transport.stop());
  return transport;
}

function progress(done: number): NewEvent {
  return { type: 'NodeProgress', data: { node: 'node-a', done, total: 10_000 } };
}

async function newTask(): Promise<string> {
  const taskId = randomUUID();
  await store.append(taskId, [
    { type: 'TaskCreated', data: { userId: 'u1', action: 'cordon', nodes: ['node-a'], params: {} } },
  ]);
  return taskId;
}

function untilHealth(transport: RedisTransport, healthy: boolean): Promise<TransportHealth> {
  return firstValueFrom(
    transport.health$.pipe(
      filter((h) => h.healthy === healthy),
      timeout(WAIT.timeout),
    ),
  );
}

describe('createRedisTransport against a private Redis that fails', () => {
  it('gets every one of 10,000 events exactly once, in order, while Redis restarts and is killed', async () => {
    const channel = uniqueName('progress');
    const publisher = newTransport({ channel });
    const subscriber = newTransport({ channel });
    await Promise.all([publisher.start(), subscriber.start()]);
    const health: TransportHealth[] = [];
    subscriber.health$.subscribe((h) => health.push(h));
    let resyncs = 0;
    subscriber.resync$.subscribe(() => resyncs++);
    const inlineSeqs: number[] = [];
    subscriber.hints$.subscribe((hint) => inlineSeqs.push(...(hint.events ?? []).map((event) => event.seq)));
    const task = await newTask();
    const streams = new ProgressStreams({ store, hints: subscriber });
    // events$ completes after the terminal event, the 10,000th.
    const received = lastValueFrom(streams.events$(task).pipe(toArray(), timeout(WAIT.timeout * 2)));

    const total = 10_000;
    const batch = 50;
    let appended = 1;
    let restarting: Promise<void> | null = null;
    let afterFaults = 0;
    const append = async (events: NewEvent[]) => {
      await publisher.afterCommit(await store.append(task, events));
      appended += events.length;
    };
    while (appended < total - 1) {
      const size = Math.min(batch, total - 1 - appended);
      await append(Array.from({ length: size }, (_, i) => progress(appended + i)));
      // Appends go on while the server restarts.
      if (appended === 3_001) restarting = server.restart();
      if (appended === 5_001) {
        await restarting;
        await untilHealth(subscriber, true);
        await server.kill();
        await untilHealth(subscriber, false);
        await append([progress(appended)]);
        await server.start();
        await Promise.all([untilHealth(subscriber, true), untilHealth(publisher, true)]);
        afterFaults = appended;
      }
    }
    await append([{ type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } }]);
    expect(appended).toBe(total);

    const events = await received;
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const fromStore: StoredEvent[] = [];
    for (
      let page: StoredEvent[];
      (page = await store.readTask(task, { after: fromStore.length })).length > 0;
    ) {
      fromStore.push(...page);
    }
    expect(events).toEqual(fromStore);
    // Both outages were seen and followed by a resubscription, after which Pub/Sub carried events again.
    const outages = health.filter((h, i) => !h.healthy && health[i - 1]?.healthy === true);
    expect(outages.length).toBeGreaterThanOrEqual(2);
    expect(resyncs).toBeGreaterThanOrEqual(2);
    expect(inlineSeqs.some((seq) => seq > afterFaults)).toBe(true);
  });

  it('catches up an event whose PUBLISH failed by the position check, and reports the outage', async () => {
    const channel = uniqueName('progress');
    const publisher = newTransport({ channel });
    const subscriber = newTransport({ channel });
    const hints: Hint[] = [];
    subscriber.hints$.subscribe((hint) => hints.push(hint));
    await Promise.all([publisher.start(), subscriber.start()]);
    const task = await newTask();
    subscriber.watch(task);
    await vi.waitFor(() => expect(hints).toEqual([{ taskId: task, seq: 1 }]), WAIT);

    await server.stop();
    const down = await untilHealth(publisher, false);
    expect(down.reason).toContain(`:${server.port} is down`);
    const stored = await store.append(task, [progress(1)]);
    await publisher.afterCommit(stored);
    expect(publisher.failedPublishes).toBe(1);
    await expect(subscriber.probe(500)).rejects.toBeInstanceOf(TransportUnavailableError);
    await vi.waitFor(() => expect(hints.at(-1)).toEqual({ taskId: task, seq: 2 }), WAIT);

    const resynced = firstValueFrom(subscriber.resync$.pipe(timeout(WAIT.timeout)));
    await server.start();
    await resynced;
    await Promise.all([untilHealth(publisher, true), untilHealth(subscriber, true)]);
    expect(await subscriber.probe(10_000)).toBeGreaterThanOrEqual(0);
    const next = await store.append(task, [progress(2)]);
    await publisher.afterCommit(next);
    await vi.waitFor(() => expect(hints.at(-1)).toEqual({ taskId: task, seq: 3, events: next }), WAIT);
  });

  it('serves 1,000 subscribers with one subscriber connection', async () => {
    const channel = uniqueName('progress');
    const publisher = newTransport({ channel });
    const connectionName = uniqueName('gateway');
    const subscriber = newTransport({
      channel,
      redis: { ...privateRedis(), connectionName },
    });
    await Promise.all([publisher.start(), subscriber.start()]);
    const streams = new ProgressStreams({ store, hints: subscriber });
    const tasks = await Promise.all(Array.from({ length: 100 }, () => newTask()));
    // Each subscriber takes the task's first two events, then unsubscribes.
    const received = Array.from({ length: 1000 }, (_, i) =>
      lastValueFrom(
        streams.events$(tasks[i % tasks.length]!).pipe(take(2), toArray(), timeout(WAIT.timeout)),
      ),
    );

    const admin = new Redis(privateRedis());
    cleanups.push(async () => admin.disconnect());
    const clients = String(await admin.client('LIST'))
      .trim()
      .split('\n')
      .filter((line) => line.includes(` name=${connectionName}-`));
    // The subscriber transport holds two connections in all, and one subscription.
    expect(clients).toHaveLength(2);
    expect(clients.filter((line) => / sub=[1-9]/.test(line))).toEqual([
      expect.stringContaining(` name=${connectionName}-subscriber `),
    ]);

    for (const taskId of tasks) await publisher.afterCommit(await store.append(taskId, [progress(1)]));
    for (const events of await Promise.all(received))
      expect(events.map((event) => event.seq)).toEqual([1, 2]);
  });
});

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventStore, runMigrations } from '@nodebatch/event-store';
import type { EventStore, Hint, NewEvent, StoredEvent, TransportHealth } from '@nodebatch/progress';
import { TransportUnavailableError } from '@nodebatch/progress';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { createRedisTransport } from './redis-transport.js';
import type { RedisTransport, RedisTransportOptions } from './redis-transport.js';
import { countingReader, ManualScheduler } from '@nodebatch/progress/testing';

const WAIT = { timeout: 20_000, interval: 20 };
const PUBLISH_PROCESS = fileURLToPath(new URL('../test/fixtures/publish-process.ts', import.meta.url));

let db: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'tredis' });
  pool = new pg.Pool({ connectionString: db.url, max: 6 });
  await runMigrations(pool);
  store = createEventStore({ pool });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

const sharedRedis = (() => {
  const url = new URL(sharedRedisUrl());
  return { host: url.hostname, port: Number(url.port || 6379) };
})();

function capturedLogger() {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const raw: string[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        raw.push(line);
        lines.push(JSON.parse(line));
      },
    },
  );
  return { logger, lines, raw };
}

function newTransport(options: Partial<RedisTransportOptions> & { channel: string }): RedisTransport {
  const transport = createRedisTransport({
    redis: sharedRedis,
    store,
    logger: pino({ level: 'silent' }),
    ...options,
  });
  cleanups.push(() => transport.stop());
  return transport;
}

function progress(done: number, message?: string): NewEvent {
  return {
    type: 'NodeProgress',
    data: { node: 'node-a', done, total: 1_000_000, ...(message ? { message } : {}) },
  };
}

async function newTask(): Promise<string> {
  const taskId = randomUUID();
  await store.append(taskId, [
    { type: 'TaskCreated', data: { userId: 'u1', action: 'cordon', nodes: ['node-a'], params: {} } },
  ]);
  return taskId;
}

/** Appends and publishes, as the notifier does for every producer. */
async function appendAndPublish(
  publisher: RedisTransport,
  taskId: string,
  events: NewEvent[],
): Promise<StoredEvent[]> {
  const stored = await store.append(taskId, events);
  await publisher.afterCommit(stored);
  return stored;
}

function collectHints(transport: RedisTransport): Hint[] {
  const hints: Hint[] = [];
  const subscription = transport.hints$.subscribe((hint) => hints.push(hint));
  cleanups.push(async () => subscription.unsubscribe());
  return hints;
}

async function rawClient(): Promise<Redis> {
  const client = new Redis(sharedRedis);
  cleanups.push(async () => client.disconnect());
  return client;
}

describe('createRedisTransport on the shared Redis', () => {
  it('carries the events of an append from one process to another, for watched tasks only', async () => {
    const channel = uniqueName('progress');
    const subscriber = newTransport({ channel });
    const hints = collectHints(subscriber);
    await subscriber.start();
    const [watched, other] = [await newTask(), await newTask()];
    subscriber.watch(watched);

    // The publisher is another Node.js process with its own pool, store and Redis connection.
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', PUBLISH_PROCESS], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_HOST: sharedRedis.host,
        REDIS_PORT: String(sharedRedis.port),
        CHANNEL: channel,
        APPENDS: JSON.stringify([
          { taskId: other, events: [progress(1)] },
          { taskId: watched, events: [progress(1), progress(2)] },
        ]),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    const published = JSON.parse(output.trim()) as {
      pid: number;
      stored: StoredEvent[][];
      failedPublishes: number;
    };
    expect(published.pid).not.toBe(process.pid);
    expect(published.failedPublishes).toBe(0);

    // While the child starts, the subscriber may also hint the watched task's head (seq only) from its
    // periodic check; the events come from the child's publish.
    const carried = () => hints.filter((hint) => hint.events !== undefined);
    await vi.waitFor(() => expect(carried()).toHaveLength(1), WAIT);
    expect(carried()[0]).toEqual({ taskId: watched, seq: 3, events: published.stored[1] });
    expect(hints.every((hint) => hint.taskId === watched)).toBe(true);
  }, 60_000);

  it.each([
    [true, 1],
    [false, 3],
  ])(
    "combineTasks %s: an appendMany's tasks go out in %i PUBLISH, and a receiver of either setting delivers each watched one",
    async (combineTasks, publishes) => {
      const channel = uniqueName('progress');
      const publisher = newTransport({ channel, maxPayloadBytes: 4096, combineTasks });
      // No position check during the test: every hint here comes from a message.
      const subscriber = newTransport({ channel, combineTasks: !combineTasks, catchUpIntervalMs: 600_000 });
      const hints = collectHints(subscriber);
      await Promise.all([publisher.start(), subscriber.start()]);
      const heard: string[] = [];
      const raw = await rawClient();
      raw.on('message', (_channel: string, message: string) => heard.push(message));
      await raw.subscribe(channel);
      const [small, large, unwatched] = [await newTask(), await newTask(), await newTask()];
      subscriber.watch(small);
      subscriber.watch(large);

      const stored = await store.appendMany!([
        { taskId: small, events: [progress(1), progress(2)] },
        { taskId: large, events: [progress(1, 'x'.repeat(5_000))] },
        { taskId: unwatched, events: [progress(1)] },
      ]);
      await publisher.afterCommit(stored.flat());

      await vi.waitFor(() => expect(hints).toHaveLength(2), WAIT);
      expect(hints).toEqual([
        { taskId: small, seq: 3, events: stored[0] },
        // Too large for the limit: a reference, read from the log by each subscriber.
        { taskId: large, seq: 2 },
      ]);
      await vi.waitFor(() => expect(heard).toHaveLength(publishes), WAIT);
      expect(subscriber.malformedMessages).toBe(0);
    },
  );

  it('delivers a 20 KB event whole, and sends a reference above the payload limit', async () => {
    const channel = uniqueName('progress');
    const publisher = newTransport({ channel, maxPayloadBytes: 32 * 1024 });
    const subscriber = newTransport({ channel });
    const hints = collectHints(subscriber);
    await Promise.all([publisher.start(), subscriber.start()]);
    const task = await newTask();
    subscriber.watch(task);

    const large = await appendAndPublish(publisher, task, [progress(1, 'x'.repeat(20_000))]);
    await vi.waitFor(() => expect(hints).toHaveLength(1), WAIT);
    expect(hints[0]?.events).toEqual(large);
    expect((hints[0]?.events?.[0]?.data as { message: string }).message).toHaveLength(20_000);

    // Three 15 KB events in one append exceed the 32 KiB limit together.
    await appendAndPublish(
      publisher,
      task,
      [2, 3, 4].map((done) => progress(done, 'y'.repeat(15_000))),
    );
    await vi.waitFor(() => expect(hints).toHaveLength(2), WAIT);
    expect(hints[1]).toEqual({ taskId: task, seq: 5 });
  });

  it('survives junk on the channel, counts it and logs it once', async () => {
    const channel = uniqueName('progress');
    const { logger, lines } = capturedLogger();
    const publisher = newTransport({ channel });
    const subscriber = newTransport({ channel, logger });
    const hints = collectHints(subscriber);
    await Promise.all([publisher.start(), subscriber.start()]);
    const task = await newTask();
    subscriber.watch(task);

    const junk = await rawClient();
    await junk.publish(channel, 'not json {');
    await junk.publish(channel, JSON.stringify({ hello: 'world' }));
    await junk.publish(channel, Buffer.from([0xff, 0x00, 0xfe]));
    await junk.publish(
      channel,
      JSON.stringify({
        v: 1,
        kind: 'events',
        taskId: task,
        seq: 2,
        events: [{ taskId: task, seq: 2, type: 'Nope' }],
      }),
    );
    const stored = await appendAndPublish(publisher, task, [progress(1)]);
    await vi.waitFor(() => expect(hints).toHaveLength(1), WAIT);
    expect(hints[0]).toEqual({ taskId: task, seq: 2, events: stored });
    expect(subscriber.malformedMessages).toBe(4);
    expect(lines.filter((line) => line.msg.startsWith('ignored a malformed message'))).toHaveLength(1);
  });

  it('hints from one position check per interval what was never published, whatever the number of watchers', async () => {
    const channel = uniqueName('progress');
    const { reader, calls } = countingReader(store);
    const scheduler = new ManualScheduler();
    const subscriber = newTransport({ channel, store: reader, scheduler });
    const hints = collectHints(subscriber);
    await subscriber.start();
    const tasks = [await newTask(), await newTask()];
    for (const taskId of tasks) for (let i = 0; i < 500; i++) subscriber.watch(taskId);

    await scheduler.tick();
    expect(calls.latestSeqs).toBe(1);
    // A task's first check announces where it stands, once.
    expect(hints).toEqual(tasks.map((taskId) => ({ taskId, seq: 1 })));

    // Appended but never published: only the position check can tell.
    await store.append(tasks[0]!, [progress(1), progress(2)]);
    await scheduler.tick();
    expect(calls.latestSeqs).toBe(2);
    expect(hints.slice(2)).toEqual([{ taskId: tasks[0], seq: 3 }]);

    await scheduler.tick();
    expect(calls.latestSeqs).toBe(3);
    expect(hints).toHaveLength(3);
    expect(calls.readTask + calls.readAll + calls.headPosition).toBe(0);

    for (const taskId of tasks) for (let i = 0; i < 500; i++) subscriber.unwatch(taskId);
    await scheduler.tick();
    expect(calls.latestSeqs).toBe(3);
  });

  it('does not hint again from the position check what Pub/Sub already announced', async () => {
    const channel = uniqueName('progress');
    const scheduler = new ManualScheduler();
    const publisher = newTransport({ channel });
    const subscriber = newTransport({ channel, scheduler });
    const hints = collectHints(subscriber);
    await Promise.all([publisher.start(), subscriber.start()]);
    const task = await newTask();
    subscriber.watch(task);
    await scheduler.tick();
    expect(hints).toEqual([{ taskId: task, seq: 1 }]);

    await appendAndPublish(publisher, task, [progress(1)]);
    await vi.waitFor(() => expect(hints).toHaveLength(2), WAIT);
    await scheduler.tick();
    expect(hints).toHaveLength(2);
  });

  it('probes by a message that comes back through the subscriber connection', async () => {
    const channel = uniqueName('progress');
    const transport = newTransport({ channel });
    await transport.start();
    const listener = await rawClient();
    const seen: string[] = [];
    listener.on('message', (_channel: string, message: string) => seen.push(message));
    await listener.subscribe(channel);
    const ms = await transport.probe(5_000);
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(seen.map((message) => JSON.parse(message))).toEqual([
      { v: 1, kind: 'probe', id: expect.any(String) },
    ]);
  });

  it('refuses to start when Redis is not there, naming the address and never the password', async () => {
    const { logger, raw } = capturedLogger();
    const transport = newTransport({
      channel: uniqueName('progress'),
      redis: { host: '127.0.0.1', port: 1, password: 'hunter2-secret', retryStrategy: () => 50 },
      logger,
    });
    const health: TransportHealth[] = [];
    transport.health$.subscribe((h) => health.push(h));
    const error = await transport.start().then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TransportUnavailableError);
    expect((error as Error).message).toMatch(/127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(health.at(-1)).toMatchObject({ healthy: false, reason: expect.stringContaining('ECONNREFUSED') });
    expect(JSON.stringify({ message: (error as Error).message, health, raw })).not.toContain('hunter2');
  });
});

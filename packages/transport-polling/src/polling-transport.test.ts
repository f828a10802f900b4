import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventStore, runMigrations } from '@nodebatch/event-store';
import type {
  EventReader,
  EventStore,
  Hint,
  NewEvent,
  StoredEvent,
  Transport,
  TransportHealth,
} from '@nodebatch/progress';
import { realScheduler, TransportUnavailableError } from '@nodebatch/progress';
import type { ScheduledTask, Scheduler } from '@nodebatch/progress';
import { createTestDatabase, sharedDatabaseUrl } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { createPollingTransport } from './polling-transport.js';
import type { PollingTransportOptions } from './polling-transport.js';
import { countingReader, ManualScheduler } from '@nodebatch/progress/testing';

const WAIT = { timeout: 20_000, interval: 20 };

let db: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'tpoll' });
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

const silent = pino({ level: 'silent' });

function capturedLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

function newTransport(options: Partial<PollingTransportOptions> = {}): Transport {
  const transport = createPollingTransport({ store, intervalMs: 50, logger: silent, ...options });
  cleanups.push(() => transport.stop());
  return transport;
}

function progress(done: number): NewEvent {
  return { type: 'NodeProgress', data: { node: 'node-a', done, total: 1_000_000 } };
}

async function newTask(target: EventStore = store): Promise<string> {
  const taskId = randomUUID();
  await target.append(taskId, [
    { type: 'TaskCreated', data: { userId: 'u1', action: 'cordon', nodes: ['node-a'], params: {} } },
  ]);
  return taskId;
}

function collect(transport: Transport) {
  const hints: Hint[] = [];
  let resyncs = 0;
  const subscriptions = [
    transport.hints$.subscribe((hint) => hints.push(hint)),
    transport.resync$.subscribe(() => resyncs++),
  ];
  cleanups.push(async () => subscriptions.forEach((s) => s.unsubscribe()));
  return {
    hints,
    resyncs: () => resyncs,
    eventsOf: (taskId: string): StoredEvent[] =>
      hints.filter((hint) => hint.taskId === taskId).flatMap((hint) => hint.events ?? []),
  };
}

/**
 * Real timers for the loop's follow-up reads; the regular poll, due about an
 * interval ahead, runs only when the test calls poll(). "Delivered before the
 * next poll" is then a fact of the test, not a race against the interval.
 */
class PollByHandScheduler implements Scheduler {
  readonly #intervalMs: number;
  #regular: (() => void) | null = null;
  #waiters: (() => void)[] = [];

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  now(): number {
    return performance.now();
  }

  schedule(task: () => void, delayMs: number): ScheduledTask {
    for (const waiter of this.#waiters.splice(0)) waiter();
    if (delayMs < this.#intervalMs / 2) return realScheduler.schedule(task, delayMs);
    this.#regular = task;
    return {
      cancel: () => {
        if (this.#regular === task) this.#regular = null;
      },
    };
  }

  /** True while the loop waits for its regular poll (no follow-up pending or running). */
  get waitingForPoll(): boolean {
    return this.#regular !== null;
  }

  /** Runs the regular poll and waits until the loop has scheduled what comes after it. */
  async poll(): Promise<void> {
    const task = this.#regular;
    if (!task) throw new Error('no regular poll is scheduled');
    this.#regular = null;
    const next = new Promise<void>((resolve) => this.#waiters.push(resolve));
    task();
    await next;
  }
}

/** Starts an append of one event whose transaction stays open, in its hook, until commit() is called. */
async function holdAppend(taskId: string): Promise<{ commit(): Promise<StoredEvent[]> }> {
  let entered!: () => void;
  const inHook = new Promise<void>((resolve) => (entered = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const appended = store.append(taskId, [progress(1)], {
    hook: () => {
      entered();
      return released;
    },
  });
  cleanups.push(async () => {
    release();
    await appended;
  });
  await inHook;
  return {
    commit: () => {
      release();
      return appended;
    },
  };
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: sharedDatabaseUrl() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describe('createPollingTransport', () => {
  it('makes one query per poll whatever the number of watchers, and none while nothing is watched', async () => {
    const { reader, calls, total } = countingReader(store);
    const scheduler = new ManualScheduler();
    const transport = newTransport({ store: reader, scheduler });
    const seen = collect(transport);
    const a = await newTask();
    const b = await newTask();

    transport.watch(a);
    await transport.start();
    expect(total()).toBe(1);
    await store.append(a, [progress(1), progress(2)]);
    await scheduler.tick();
    expect(total()).toBe(2);
    expect(seen.eventsOf(a).map((event) => event.seq)).toEqual([2, 3]);

    // 2,000 subscriptions of two tasks cost what one did: one query per poll, one hint per task.
    for (let i = 0; i < 999; i++) transport.watch(a);
    for (let i = 0; i < 1000; i++) transport.watch(b);
    for (let poll = 1; poll <= 3; poll++) {
      await store.append(a, [progress(10 + poll)]);
      await store.append(b, [progress(10 + poll)]);
      const hintsBefore = seen.hints.length;
      await scheduler.tick();
      expect(total()).toBe(2 + poll);
      expect(seen.hints.length - hintsBefore).toBe(2);
    }
    expect(calls.readAll).toBe(4);
    expect(seen.eventsOf(a).map((event) => event.seq)).toEqual([2, 3, 4, 5, 6]);
    expect(seen.eventsOf(b).map((event) => event.seq)).toEqual([2, 3, 4]);

    for (let i = 0; i < 1000; i++) transport.unwatch(a);
    for (let i = 0; i < 1000; i++) transport.unwatch(b);
    await store.append(a, [progress(20)]);
    await scheduler.tick();
    await scheduler.tick();
    expect(total()).toBe(5);

    // Back from idle: the first poll takes the head position and tells
    // subscribers to read what came before it from the store.
    transport.watch(b);
    expect(seen.resyncs()).toBe(0);
    await scheduler.tick();
    expect(calls.headPosition).toBe(2);
    expect(seen.resyncs()).toBe(1);
    await store.append(b, [progress(30)]);
    await scheduler.tick();
    expect(total()).toBe(7);
    expect(seen.eventsOf(b).map((event) => event.seq)).toEqual([2, 3, 4, 5]);
    expect(seen.eventsOf(a).map((event) => event.seq)).toEqual([2, 3, 4, 5, 6]);
  });

  it('starts polls one interval apart: the time a read takes is not added to the wait', async () => {
    const delays: number[] = [];
    let pending: (() => void) | null = null;
    const scheduler = {
      now: () => performance.now(),
      schedule(task: () => void, delayMs: number) {
        delays.push(delayMs);
        pending = task;
        return { cancel: () => (pending = null) };
      },
    };
    const readMs = 80;
    const slowReader: EventReader = {
      readTask: (taskId, options) => store.readTask(taskId, options),
      latestSeqs: (taskIds) => store.latestSeqs(taskIds),
      headPosition: () => store.headPosition(),
      readAll: (options) => store.readAll(options),
      readAllPage: async (options) => {
        await new Promise((resolve) => setTimeout(resolve, readMs));
        return store.readAllPage(options);
      },
    };
    const transport = newTransport({ store: slowReader, scheduler, intervalMs: 1000 });
    transport.watch(await newTask());
    await transport.start();
    expect(delays).toEqual([1000]);
    pending!();
    await vi.waitFor(() => expect(delays).toHaveLength(2), WAIT);
    // The read took at least readMs, so the next poll is due at most 1000 - readMs after it.
    expect(delays[1]).toBeLessThanOrEqual(1000 - readMs);
    expect(delays[1]).toBeGreaterThanOrEqual(0);
  });

  /** A started transport polled by hand every 5 s, watching two new tasks. */
  async function twoTaskTransport(options: { followUpDelayMs?: number; maxFollowUps?: number } = {}) {
    const { reader, calls } = countingReader(store);
    const scheduler = new PollByHandScheduler(5_000);
    const transport = newTransport({ store: reader, scheduler, intervalMs: 5_000, ...options });
    const seen = collect(transport);
    const [slow, fast] = [await newTask(), await newTask()];
    transport.watch(slow);
    transport.watch(fast);
    await transport.start();
    return { calls, scheduler, seen, slow, fast };
  }

  it('delivers events held back behind an append in flight once it commits, before the next poll', async () => {
    const { calls, scheduler, seen, slow, fast } = await twoTaskTransport();

    // The slow append holds a position below the fast one's, which commits: a
    // read must hold the fast event back until the slow one has committed.
    const slowAppend = await holdAppend(slow);
    const [fastEvent] = await store.append(fast, [progress(1)]);
    await scheduler.poll();
    expect(calls.readAll).toBe(1);
    expect(seen.hints).toEqual([]);

    const [slowEvent] = await slowAppend.commit();
    expect(slowEvent!.position).toBeLessThan(fastEvent!.position);
    // No regular poll runs again in this test: only a follow-up read can deliver them.
    await vi.waitFor(() => expect(seen.hints.map((hint) => hint.taskId)).toEqual([slow, fast]), WAIT);
    expect(seen.eventsOf(slow)).toEqual([slowEvent]);
    expect(seen.eventsOf(fast)).toEqual([fastEvent]);
    // Read past what was held back, the loop waits for its regular poll again.
    await vi.waitFor(() => expect(scheduler.waitingForPoll).toBe(true), WAIT);
    const reads = calls.readAll;
    expect(reads).toBeGreaterThan(1);
    expect(reads).toBeLessThanOrEqual(6);
  });

  it('follows up at most maxFollowUps times per interval while an append stays in flight', async () => {
    const { calls, scheduler, seen, slow, fast } = await twoTaskTransport({
      followUpDelayMs: 5,
      maxFollowUps: 3,
    });

    const slowAppend = await holdAppend(slow);
    await store.append(fast, [progress(1)]);
    await scheduler.poll();
    // Three follow-ups (5, 10 and 20 ms apart) find the append still open; then the loop waits.
    await vi.waitFor(() => expect(scheduler.waitingForPoll).toBe(true), WAIT);
    expect(calls.readAll).toBe(4);
    expect(seen.hints).toEqual([]);

    await slowAppend.commit();
    await scheduler.poll();
    expect(seen.hints.map((hint) => hint.taskId)).toEqual([slow, fast]);
    // Nothing held back: no follow-up, the next read is the regular poll.
    expect(scheduler.waitingForPoll).toBe(true);
    expect(calls.readAll).toBe(5);
  });

  it('pages through a backlog in one poll when a query returns a full page', async () => {
    const { reader, calls } = countingReader(store);
    const scheduler = new ManualScheduler();
    const transport = newTransport({ store: reader, scheduler, batchSize: 10 });
    const seen = collect(transport);
    const task = await newTask();
    transport.watch(task);
    await transport.start();
    for (let i = 0; i < 5; i++)
      await store.append(
        task,
        [1, 2, 3, 4, 5].map((n) => progress(i * 5 + n)),
      );
    await scheduler.tick();
    expect(calls.readAll).toBe(3);
    expect(seen.eventsOf(task).map((event) => event.seq)).toEqual(
      Array.from({ length: 25 }, (_, i) => i + 2),
    );
  });

  it('probes with a real query of the store', async () => {
    const { reader, calls } = countingReader(store);
    const transport = newTransport({ store: reader });
    await transport.start();
    const before = calls.headPosition;
    const ms = await transport.probe(5_000);
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(calls.headPosition).toBe(before + 1);
  });

  it('reports store errors as unhealthy and recovers with a resync, losing no event', async () => {
    const faultDb = await createTestDatabase({ prefix: 'tpoll_fault' });
    const faultPool = new pg.Pool({ connectionString: faultDb.url, max: 2 });
    // Sessions killed by the test surface as pool errors; the queries report them. A session killed
    // while its client is out of the pool (being closed after a failed query) errors on the client
    // itself: each client gets a listener, as the runtime's pool does (create-runtime.ts).
    faultPool.on('error', () => undefined);
    faultPool.on('connect', (client) => client.on('error', () => undefined));
    cleanups.push(async () => {
      await faultPool.end();
      await faultDb.drop();
    });
    await runMigrations(faultPool);
    const faultStore = createEventStore({ pool: faultPool });
    const task = await newTask(faultStore);
    const { logger, lines } = capturedLogger();
    const transport = newTransport({ store: faultStore, intervalMs: 30, logger });
    const seen = collect(transport);
    const health: TransportHealth[] = [];
    transport.health$.subscribe((h) => health.push(h));
    transport.watch(task);
    await transport.start();
    expect(health.at(-1)).toEqual({ healthy: true, reason: null });

    await withAdmin(async (admin) => {
      await admin.query(`ALTER DATABASE "${faultDb.name}" ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
        faultDb.name,
      ]);
    });
    // The first failure may be a session being terminated; then new sessions are refused.
    const refused = await firstValueFrom(
      transport.health$.pipe(
        filter((h) => !h.healthy && /not currently accepting connections/.test(h.reason ?? '')),
        timeout(WAIT.timeout),
      ),
    );
    expect(refused.reason).toMatch(/^event store query failed: /);
    await expect(transport.probe(5_000)).rejects.toBeInstanceOf(TransportUnavailableError);

    const resynced = firstValueFrom(transport.resync$.pipe(timeout(WAIT.timeout)));
    await withAdmin((admin) => admin.query(`ALTER DATABASE "${faultDb.name}" ALLOW_CONNECTIONS true`));
    await resynced;
    expect(health.at(-1)).toEqual({ healthy: true, reason: null });

    await faultStore.append(task, [progress(1)]);
    await vi.waitFor(() => expect(seen.eventsOf(task).map((event) => event.seq)).toEqual([2]), WAIT);
    // One line per change, however many polls failed.
    expect(lines.filter((line) => line.msg.startsWith('polling unhealthy'))).toHaveLength(1);
    expect(lines.filter((line) => line.msg.startsWith('polling recovered'))).toHaveLength(1);
  });
});

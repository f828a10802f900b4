import pg from 'pg';
import { pino } from 'pino';
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import type { Observable } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventStore, runMigrations } from '@nodebatch/event-store';
import type { Hint, NewEvent, StoredEvent, TransportHealth } from '@nodebatch/progress';
import { TransportUnavailableError } from '@nodebatch/progress';
import { InstrumentedReader, countingReader } from '@nodebatch/progress/testing';
import { createTestDatabase, startTcpProxy, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { createPostgresTransport } from './postgres-transport.js';
import type { PostgresTransport, PostgresTransportOptions } from './postgres-transport.js';

const WAIT_MS = 15_000;

let db: TestDatabase;
let pool: pg.Pool;
let store: ReturnType<typeof createEventStore>;
const transports: PostgresTransport[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'tpg' });
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await runMigrations(pool);
  store = createEventStore({ pool });
});

afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.stop()));
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

function newTransport(overrides: Partial<PostgresTransportOptions> = {}) {
  const applicationName = uniqueName('listener');
  const transport = createPostgresTransport({
    pool,
    connection: { connectionString: db.url, application_name: applicationName },
    store,
    channel: uniqueName('progress'),
    logger: pino({ level: 'silent' }),
    reconnect: { minDelayMs: 20, maxDelayMs: 200 },
    ...overrides,
  });
  transports.push(transport);
  return { transport, applicationName };
}

const created = (node = 'node-a'): NewEvent => ({
  type: 'TaskCreated',
  data: { userId: 'u1', action: 'cordon', nodes: [node], params: {} },
});
const progress = (done: number, message?: string): NewEvent => ({
  type: 'NodeProgress',
  data: { node: 'node-a', done, total: 100, ...(message === undefined ? {} : { message }) },
});

function hintsFor(hints$: Observable<Hint>, taskId: string, count = 1): Promise<Hint[]> {
  return firstValueFrom(
    hints$.pipe(
      filter((hint) => hint.taskId === taskId),
      take(count),
      toArray(),
      timeout(WAIT_MS),
    ),
  );
}

function append(transport: PostgresTransport, taskId: string, events: NewEvent[]): Promise<StoredEvent[]> {
  return store.append(taskId, events, { hook: transport.inTransaction });
}

function healthBecomes(transport: PostgresTransport, healthy: boolean): Promise<TransportHealth> {
  return firstValueFrom(
    transport.health$.pipe(
      filter((health) => health.healthy === healthy),
      timeout(WAIT_MS),
    ),
  );
}

describe('postgres transport', () => {
  it('delivers the events of a committed append, carried in the notification', async () => {
    const { transport } = newTransport();
    await transport.start();
    const taskId = uniqueName('task');
    transport.watch(taskId);
    const received = hintsFor(transport.hints$, taskId, 2);
    const first = await append(transport, taskId, [created(), progress(1)]);
    const second = await append(transport, taskId, [progress(2)]);
    expect(await received).toEqual([
      { taskId, seq: 2, events: first },
      { taskId, seq: 3, events: second },
    ]);
  });

  it('announces nothing for an append that rolled back', async () => {
    const { transport } = newTransport();
    await transport.start();
    const taskId = uniqueName('task');
    transport.watch(taskId);
    const received = hintsFor(transport.hints$, taskId);
    await expect(
      store.append(taskId, [created()], {
        hook: async (tx, events) => {
          await transport.inTransaction(tx, events);
          throw new Error('abort after NOTIFY');
        },
      }),
    ).rejects.toThrow('abort after NOTIFY');
    const committed = await append(transport, taskId, [created()]);
    expect(committed[0]?.seq).toBe(1);
    // The first hint is the committed append: the rolled back NOTIFY was never delivered.
    expect(await received).toEqual([{ taskId, seq: 1, events: committed }]);
  });

  it('delivers a 20 KB event whole, sent by reference and read from the log once', async () => {
    const counting = countingReader(store);
    const { transport } = newTransport({ store: counting.reader });
    await transport.start();
    const taskId = uniqueName('task');
    transport.watch(taskId);
    // Two subscribers of the same hints: the reference is still resolved with one read, not one each.
    const other = hintsFor(transport.hints$, taskId, 2);
    // Listening before the first append: its hint may arrive before append() resolves.
    const received = hintsFor(transport.hints$, taskId, 2);
    await append(transport, taskId, [created()]);
    const big = 'é'.repeat(10_000); // 20,000 bytes in UTF-8
    const stored = await append(transport, taskId, [progress(1, big)]);
    const hints = await received;
    expect(hints[1]).toEqual({ taskId, seq: 2, events: stored, readFromLog: true });
    const event = hints[1]?.events?.[0];
    expect(event?.type === 'NodeProgress' && event.data.message).toBe(big);
    expect(await other).toEqual(hints);
    // The small first event travelled inline; the big one cost exactly one read of the log.
    expect(counting.calls).toEqual({ readTask: 1, readAll: 0, latestSeqs: 0, headPosition: 0 });
  });

  /** Every payload on a transport's channel, heard by a LISTEN connection of the test's own. */
  async function overhear(channel: string): Promise<{ payloads: string[]; close: () => Promise<void> }> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const payloads: string[] = [];
    client.on('notification', (message) => payloads.push(message.payload ?? ''));
    await client.query(`LISTEN "${channel}"`);
    return { payloads, close: () => client.end() };
  }

  it.each([
    [true, 1],
    [false, 3],
  ])(
    "combineTasks %s: an appendMany's tasks go out in %i NOTIFY, and a receiver of either setting delivers each watched one",
    async (combineTasks, notifications) => {
      const counting = countingReader(store);
      const { transport: sender } = newTransport({ combineTasks });
      const { transport: receiver } = newTransport({
        channel: sender.channel,
        store: counting.reader,
        combineTasks: !combineTasks,
      });
      await receiver.start();
      const [small, large, unwatched] = [uniqueName('task'), uniqueName('task'), uniqueName('task')];
      receiver.watch(small);
      receiver.watch(large);
      const seen: string[] = [];
      const subscription = receiver.hints$.subscribe((hint) => seen.push(hint.taskId));
      const heard = await overhear(sender.channel);
      try {
        const received = Promise.all([hintsFor(receiver.hints$, small), hintsFor(receiver.hints$, large)]);
        const big = 'é'.repeat(5_000); // 10,000 bytes in UTF-8: sent by reference
        const [smallEvents, largeEvents] = await store.appendMany(
          [
            { taskId: small, events: [created(), progress(1)] },
            { taskId: large, events: [created(), progress(1, big)] },
            { taskId: unwatched, events: [created()] },
          ],
          { hook: sender.inTransaction },
        );
        expect(await received).toEqual([
          [{ taskId: small, seq: 2, events: smallEvents }],
          [{ taskId: large, seq: 2, events: largeEvents, readFromLog: true }],
        ]);
        await vi.waitFor(() => expect(heard.payloads).toHaveLength(notifications));
        expect(seen.sort()).toEqual([small, large].sort());
        expect(receiver.malformedPayloads).toBe(0);
        // Only the large task cost a read of the log.
        expect(counting.calls.readTask).toBe(1);
      } finally {
        subscription.unsubscribe();
        await heard.close();
      }
    },
  );

  it("holds back only its own task's later notifications while a reference is read from the log", async () => {
    const reader = new InstrumentedReader(store);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { transport } = newTransport({ store: reader });
    await transport.start();
    const [large, other] = [uniqueName('task'), uniqueName('task')];
    transport.watch(large);
    transport.watch(other);
    const order: string[] = [];
    const subscription = transport.hints$.subscribe((hint) => order.push(`${hint.taskId}:${hint.seq}`));
    try {
      await append(transport, large, [created()]);
      await append(transport, other, [created()]);
      await vi.waitFor(() => expect(order).toHaveLength(2));
      reader.beforeRead = (taskId) => (taskId === large ? held : Promise.resolve());

      // 10,000 bytes in UTF-8: announced by reference, and its read is held.
      await append(transport, large, [progress(1, 'é'.repeat(5_000))]);
      await append(transport, large, [progress(2)]);
      await append(transport, other, [progress(1)]);
      await vi.waitFor(() => expect(order).toContain(`${other}:2`));
      // The other task went on; the large task's next notification waits behind its reference.
      expect(order.slice(2)).toEqual([`${other}:2`]);

      release();
      await vi.waitFor(() => expect(order).toHaveLength(5));
      expect(order.slice(3)).toEqual([`${large}:2`, `${large}:3`]);
    } finally {
      release();
      subscription.unsubscribe();
    }
  });

  it('drops hints of tasks nobody watches and stops after the last unwatch', async () => {
    const { transport } = newTransport();
    await transport.start();
    const watched = uniqueName('task');
    const other = uniqueName('task');
    transport.watch(watched);
    transport.watch(other);
    transport.unwatch(other);
    const seen: string[] = [];
    const subscription = transport.hints$.subscribe((hint) => seen.push(hint.taskId));
    const received = hintsFor(transport.hints$, watched);
    await append(transport, other, [created()]);
    await append(transport, watched, [created()]);
    await received;
    subscription.unsubscribe();
    expect(seen).toEqual([watched]);
  });

  it('survives junk on the channel, counts it and logs it once', async () => {
    const { logger, lines } = capturedLogger();
    const { transport } = newTransport({ logger, malformedSummaryIntervalMs: 60_000 });
    await transport.start();
    const taskId = uniqueName('task');
    transport.watch(taskId);
    const received = hintsFor(transport.hints$, taskId, 2);
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      const notify = (payload: string) =>
        other.query('SELECT pg_notify($1, $2)', [transport.channel, payload]);
      await notify('garbage');
      await notify('{"hello":"world"}');
      await notify('[1,2,3]');
      // A readable envelope with an invalid event: counted, and still a reason to read the log.
      await notify(JSON.stringify({ taskId, seq: 1, events: [{ seq: 1, type: 'Bogus' }] }));
      const stored = await append(transport, taskId, [created()]);
      expect(await received).toEqual([
        { taskId, seq: 1 },
        { taskId, seq: 1, events: stored },
      ]);
    } finally {
      await other.end();
    }
    expect(transport.malformedPayloads).toBe(4);
    const warnings = lines.filter((line) => String(line.msg).includes('malformed payload'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, payload: 'garbage', channel: transport.channel });
  });

  it('answers a probe through its LISTEN connection and refuses one when stopped', async () => {
    const { transport } = newTransport();
    await transport.start();
    const elapsed = await transport.probe(WAIT_MS);
    expect(elapsed).toBeGreaterThan(0);
    await transport.stop();
    await expect(transport.probe(1_000)).rejects.toBeInstanceOf(TransportUnavailableError);
  });

  it('reconnects after pg_terminate_backend, LISTENs again and asks subscribers to resync', async () => {
    const { logger, lines } = capturedLogger();
    const { transport, applicationName } = newTransport({ logger });
    await transport.start();
    const taskId = uniqueName('task');
    transport.watch(taskId);
    for (let round = 1; round <= 3; round += 1) {
      const unhealthy = healthBecomes(transport, false);
      const resynced = firstValueFrom(transport.resync$.pipe(timeout(WAIT_MS)));
      const { rowCount } = await pool.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [applicationName],
      );
      expect(rowCount).toBe(1);
      expect((await unhealthy).reason).toContain('listener connection lost');
      await resynced;
      const received = hintsFor(transport.hints$, taskId);
      const stored = await append(transport, taskId, round === 1 ? [created()] : [progress(round)]);
      expect(await received).toEqual([{ taskId, seq: round, events: stored }]);
    }
    const losses = lines.filter((line) => String(line.msg).startsWith('listener connection lost'));
    expect(losses).toHaveLength(3);
  });

  it('gives up a connection that silently stopped answering, and reconnects', async () => {
    const target = new URL(db.url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    try {
      const proxied = new URL(db.url);
      proxied.host = `127.0.0.1:${proxy.port}`;
      const { transport } = newTransport({
        connection: { connectionString: proxied.toString() },
        heartbeatIntervalMs: 200,
        // Generous: a heartbeat that times out before the freeze on a loaded machine would eat the hint below.
        heartbeatTimeoutMs: 2_000,
      });
      await transport.start();
      const taskId = uniqueName('task');
      transport.watch(taskId);
      const unhealthy = healthBecomes(transport, false);
      const resynced = firstValueFrom(transport.resync$.pipe(timeout(WAIT_MS)));
      // No FIN, no RST, no error: only the heartbeat can notice.
      proxy.freeze();
      expect((await unhealthy).reason).toContain('heartbeat got no answer');
      await resynced;
      const received = hintsFor(transport.hints$, taskId);
      const stored = await append(transport, taskId, [created()]);
      expect(await received).toEqual([{ taskId, seq: 1, events: stored }]);
    } finally {
      await proxy.close();
    }
  });

  it('summarises later malformed payloads instead of logging each', async () => {
    const { logger, lines } = capturedLogger();
    const { transport } = newTransport({ logger, malformedSummaryIntervalMs: 100 });
    await transport.start();
    await pool.query("SELECT pg_notify($1, 'junk 1'), pg_notify($1, 'junk 2'), pg_notify($1, 'junk 3')", [
      transport.channel,
    ]);
    const summary = await vi.waitFor(
      () => {
        const found = lines.find((line) => String(line.msg).startsWith('ignored 2 more malformed payloads'));
        if (!found) throw new Error('no summary yet');
        return found;
      },
      { timeout: WAIT_MS, interval: 20 },
    );
    expect(summary).toMatchObject({ malformedPayloads: 3, sinceLastReport: 2, level: 40 });
    expect(transport.malformedPayloads).toBe(3);
    expect(lines.filter((line) => String(line.msg).startsWith('ignoring a malformed payload'))).toHaveLength(
      1,
    );
  });

  it('holds one LISTEN connection however many tasks are watched', async () => {
    const { transport, applicationName } = newTransport();
    await transport.start();
    for (let i = 0; i < 1_000; i += 1) transport.watch(`task-${i}`);
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    expect(rows[0]?.n).toBe(1);
  });
});

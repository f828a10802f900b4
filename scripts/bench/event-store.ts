/**
 * Micro-benchmark of the PostgreSQL event store: appends per second (single
 * events and batches of 100, one writer and concurrent writers on different
 * tasks), events per second read by task and by global position, and the cost
 * of the commit-safe position scheme (the writer's registration and the
 * reader's readable-position query).
 *
 * Runs against NODEBATCH_TEST_DATABASE_URL or the local server, in a fresh
 * database it creates and drops:
 *   node --conditions=source --import tsx scripts/bench/event-store.ts
 */
import { createEventStore, runMigrations, type PostgresEventStore } from '@nodebatch/event-store';
import type { NewEvent } from '@nodebatch/progress';
import { createTestDatabase, sharedDatabaseUrl } from '@nodebatch/testkit';
import pg from 'pg';

const CONCURRENCY = 8;

interface Row {
  case: string;
  operations: number;
  events: number;
  seconds: number;
}

const created = (nodes = ['node-a']): NewEvent => ({
  type: 'TaskCreated',
  data: { userId: 'bench', action: 'drain', nodes, params: {} },
});
const progress = (done: number): NewEvent => ({
  type: 'NodeProgress',
  data: { node: 'node-a', done, total: 1000, message: `evicted pod ${done}` },
});
const batchOf100 = (start: number): NewEvent[] => Array.from({ length: 100 }, (_, i) => progress(start + i));

async function timed(
  label: string,
  operations: number,
  eventsPerOperation: number,
  work: () => Promise<void>,
): Promise<Row> {
  const started = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { case: label, operations, events: operations * eventsPerOperation, seconds };
}

/** Runs `perWriter` appends on each of `writers` tasks, the writers in parallel. */
async function appendLoad(
  store: PostgresEventStore,
  prefix: string,
  writers: number,
  perWriter: number,
  events: (i: number) => NewEvent[],
): Promise<void> {
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const taskId = `${prefix}-${w}`;
      await store.append(taskId, [created()]);
      for (let i = 0; i < perWriter; i++) await store.append(taskId, events(i));
    }),
  );
}

async function main(): Promise<void> {
  const serverUrl = sharedDatabaseUrl();
  const database = await createTestDatabase({ serverUrl, prefix: 'nb_bench' });
  const pool = new pg.Pool({ connectionString: database.url, max: CONCURRENCY + 2 });
  try {
    await runMigrations(pool);
    const store = createEventStore({ pool });
    const rows: Row[] = [];

    // Warm up connections and plans.
    await appendLoad(store, 'warm', CONCURRENCY, 20, (i) => [progress(i)]);

    rows.push(
      await timed('append 1 event, 1 writer', 500, 1, () =>
        appendLoad(store, 'single', 1, 500, (i) => [progress(i)]),
      ),
    );
    rows.push(
      await timed(`append 1 event, ${CONCURRENCY} writers`, CONCURRENCY * 1000, 1, () =>
        appendLoad(store, 'single-c', CONCURRENCY, 1000, (i) => [progress(i)]),
      ),
    );
    rows.push(
      await timed('append batch of 100, 1 writer', 200, 100, () =>
        appendLoad(store, 'batch', 1, 200, (i) => batchOf100(i * 100)),
      ),
    );
    rows.push(
      await timed(`append batch of 100, ${CONCURRENCY} writers`, CONCURRENCY * 50, 100, () =>
        appendLoad(store, 'batch-c', CONCURRENCY, 50, (i) => batchOf100(i * 100)),
      ),
    );

    // Reads: one task of 20,000 events by pages of 1000, then the whole log by position.
    let read = 0;
    rows.push(
      await timed('readTask, pages of 1000', 20, 1000, async () => {
        let after = 0;
        for (;;) {
          const page = await store.readTask('batch-0', { after, limit: 1000 });
          if (page.length === 0) break;
          after = page.at(-1)!.seq;
          read += page.length;
        }
      }),
    );
    rows.at(-1)!.events = read;
    rows.at(-1)!.operations = Math.ceil(read / 1000);
    read = 0;
    let pages = 0;
    rows.push(
      await timed('readAll, pages of 1000', 0, 0, async () => {
        let after = 0;
        for (;;) {
          const page = await store.readAll({ afterPosition: after, limit: 1000 });
          if (page.length === 0) break;
          after = page.at(-1)!.position;
          read += page.length;
          pages++;
        }
      }),
    );
    rows.at(-1)!.events = read;
    rows.at(-1)!.operations = pages;

    // The task listing: a projection row per task kept by each append, one indexed query per page.
    const users = 20;
    const tasksPerUser = 100;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, w) => {
        for (let i = w; i < users * tasksPerUser; i += CONCURRENCY) {
          const events: NewEvent[] = [
            { ...created(), data: { ...created().data, userId: `user-${i % users}` } } as NewEvent,
          ];
          if (i % 3 === 0)
            events.push({ type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } });
          await store.append(`listed-${i}`, events);
        }
      }),
    );
    rows.push(
      await timed(`listTasks(user, status), ${users * tasksPerUser} tasks`, 1000, 0, async () => {
        for (let i = 0; i < 1000; i++) {
          await store.listTasks({
            userId: `user-${i % users}`,
            status: i % 2 === 0 ? 'completed' : 'pending',
            limit: 50,
          });
        }
      }),
    );

    // The position scheme's own cost, measured in isolation.
    const client = await pool.connect();
    try {
      rows.push(
        await timed('baseline: round trip of SELECT 1', 2000, 0, async () => {
          for (let i = 0; i < 2000; i++) await client.query('SELECT 1');
        }),
      );
      rows.push(
        await timed('writer registration (in a transaction)', 2000, 0, async () => {
          await client.query('BEGIN');
          for (let i = 0; i < 2000; i++) await client.query('SELECT event_writer_register()');
          await client.query('ROLLBACK');
        }),
      );
      rows.push(
        await timed('readable position (idle)', 2000, 0, async () => {
          for (let i = 0; i < 2000; i++) await client.query('SELECT event_readable_position()');
        }),
      );
      let calls = 0;
      let writing = true;
      const load = appendLoad(store, 'contended', CONCURRENCY - 1, 300, (i) => [progress(i)]).finally(() => {
        writing = false;
      });
      const row = await timed(`readable position (${CONCURRENCY - 1} writers busy)`, 0, 0, async () => {
        while (writing) {
          await client.query('SELECT event_readable_position()');
          calls++;
        }
      });
      await load;
      row.operations = calls;
      rows.push(row);
    } finally {
      client.release();
    }

    const { rows: server } = await pool.query<{ version: string; sync: string }>(
      `SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync`,
    );
    console.log(
      `event store benchmark: PostgreSQL ${server[0]!.version} at ${new URL(serverUrl).host}, ` +
        `synchronous_commit=${server[0]!.sync}, pool of ${CONCURRENCY + 2}`,
    );
    console.table(
      rows.map((row) => ({
        case: row.case,
        operations: row.operations,
        events: row.events,
        seconds: row.seconds.toFixed(2),
        'operations/s': Math.round(row.operations / row.seconds),
        'events/s': row.events === 0 ? '' : Math.round(row.events / row.seconds),
        'ms/operation': ((row.seconds * 1000) / row.operations).toFixed(3),
      })),
    );
  } finally {
    await pool.end();
    // pool.end() resolves before the server closed the sessions; dropping with
    // FORCE under them would make the ending clients report an error.
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      for (;;) {
        const { rows } = await admin.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
          [database.name],
        );
        if (rows[0]!.n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await admin.end();
    }
    await database.drop();
  }
}

await main();

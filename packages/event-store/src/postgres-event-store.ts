import {
  applyFence,
  checkIdempotencyKey,
  checkInteger,
  checkLogRules,
  DEFAULT_MAX_EVENT_BYTES,
  DEFAULT_MAX_TASK_CREATED_BYTES,
  InvalidEventError,
  replayedBatch,
  StaleSequenceError,
  UnknownTaskError,
  validateEvents,
  type AppendManyOptions,
  type AppendOptions,
  type EventStore,
  type NewEvent,
  type ReadAllOptions,
  type ReadAllPage,
  type ReadTaskOptions,
  type StoredEvent,
  type TaskBatch,
  type TerminalEventType,
  type ValidatedEvent,
} from '@nodebatch/progress';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type pg from 'pg';
import { pino, type Logger } from 'pino';
import { AppendConnection } from './append-connection.js';
import type { EventRow, EventStoreDatabase, TaskRow } from './database.js';
import { applyToSummary, type TaskSummary, type TaskSummaryStatus } from './task-summary.js';

/** Options of {@link createEventStore}. */
export interface EventStoreOptions {
  /** The pool every query runs on; the store never ends it. */
  pool: pg.Pool;
  /** Default: silent. */
  logger?: Logger;
  /** Largest `data` of one event, in bytes of JSON. Default 65536 (64 KiB). */
  maxEventBytes?: number;
  /**
   * Largest `data` of a TaskCreated event, which lists every node of the
   * batch: 5,000 names such as ip-10-0-12-34.eu-west-1.compute.internal are
   * about 220 KiB. Default 1 MiB ({@link DEFAULT_MAX_TASK_CREATED_BYTES}).
   */
  maxTaskCreatedBytes?: number;
  /** Events per readTask/readAll call when no limit is given, and the largest limit accepted. Default 1000. */
  pageSize?: number;
  /** Clock for events appended without a time and for retention. Default `() => new Date()`. */
  now?: () => Date;
  /**
   * How long an append's transaction may wait for its own client between two
   * statements before the server ends the session (PostgreSQL's
   * idle_in_transaction_session_timeout, for that transaction only). A
   * process stopped mid-append would otherwise hold its task's lock, and
   * hold back every reader, for as long as it is stopped. A healthy append
   * waits for its client for well under a millisecond. Default
   * {@link DEFAULT_APPEND_IDLE_TIMEOUT_MS}.
   */
  appendIdleTimeoutMs?: number;
}

/** See {@link EventStoreOptions.appendIdleTimeoutMs}: 10 s. */
export const DEFAULT_APPEND_IDLE_TIMEOUT_MS = 10_000;

/**
 * Where a page of {@link PostgresEventStore.listTasks} ends: the last task of
 * that page (a {@link TaskSummary} will do). The listing is ordered by
 * creation time, then task id, both descending; the id makes the order total,
 * so tasks created in the same millisecond are neither skipped nor repeated
 * across a page boundary.
 */
export type TaskListCursor = Pick<TaskSummary, 'createdAt' | 'taskId'>;

/** Options of {@link PostgresEventStore.listTasks}. */
export interface ListTasksOptions {
  userId?: string;
  status?: TaskSummaryStatus;
  /** At most this many tasks. Default 50, at most 1000. */
  limit?: number;
  /** Only the tasks that come after this one in the listing (the last task of the previous page). Default: from the newest. */
  before?: TaskListCursor;
}

/** Options of {@link PostgresEventStore.deleteExpiredTasks}. */
export interface DeleteExpiredTasksOptions {
  /** Delete tasks that finished more than this many milliseconds ago. Default 7 days. */
  olderThanMs?: number;
  /** Tasks deleted per statement, so that one run never holds many locks at once. Default 500. */
  batchSize?: number;
}

export interface DeletedTasks {
  tasks: number;
  events: number;
}

/** Options of {@link PostgresEventStore.startRetentionJob}. */
export interface RetentionJobOptions {
  /** Time between runs; the first run starts at once. Default 1 hour. */
  intervalMs?: number;
  /** See {@link DeleteExpiredTasksOptions.olderThanMs}. Default 7 days. */
  olderThanMs?: number;
  /** Default: the store's logger. */
  logger?: Logger;
}

export interface RetentionJob {
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

/** The PostgreSQL event log: an {@link EventStore} with the task listing and retention. */
export interface PostgresEventStore extends EventStore {
  appendMany(batches: readonly TaskBatch[], options?: AppendManyOptions): Promise<StoredEvent[][]>;
  /** The task's summary row; null when the task does not exist (or was deleted by retention). */
  getTask(taskId: string): Promise<TaskSummary | null>;
  /** Tasks newest first, filtered by user and status, in one indexed query. */
  listTasks(options?: ListTasksOptions): Promise<TaskSummary[]>;
  /** Deletes the events and summaries of tasks that finished long enough ago; never a running task. */
  deleteExpiredTasks(options?: DeleteExpiredTasksOptions): Promise<DeletedTasks>;
  /** Runs {@link deleteExpiredTasks} now and then every `intervalMs`. */
  startRetentionJob(options?: RetentionJobOptions): RetentionJob;
}

export { DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_TASK_CREATED_BYTES };
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
const DEFAULT_RETENTION_INTERVAL_MS = 60 * 60 * 1000;
const DEFAULT_LIST_LIMIT = 50;
const MAX_LIST_LIMIT = 1000;

/**
 * An event row as the store returns it. The time is formatted by PostgreSQL
 * as JavaScript's toISOString() would (UTC, milliseconds): parsing it into a
 * Date and back for every event was a good part of a page's read time.
 */
const EVENT_COLUMNS = sql.raw(
  `position, task_id, seq, type, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time, data`,
);

/** The locked task row, with what the locking statement's snapshot saw (see append). */
interface LockedTaskRow extends TaskRow {
  seen_last_seq: number | null;
  seen_batch: number | null;
}

const TERMINAL_TYPE_OF_STATUS: Partial<Record<string, TerminalEventType>> = {
  completed: 'TaskCompleted',
  cancelled: 'TaskCancelled',
  failed: 'TaskFailed',
};

/**
 * Creates the store over a pool whose database `runMigrations` has prepared.
 *
 * Positions (invariant 4 in docs/invariants.md; the proof is in the README): an append takes its
 * positions from a sequence, concurrently with other tasks' appends, after
 * announcing in pg_locks a floor below them (event_writer_register); readAll
 * returns only positions up to the lowest floor of any append still in flight
 * (event_readable_position), so it never passes over a position that may still
 * commit. Chosen over "take positions in commit order under a global lock at
 * the end of the append" because the hook must see the positions: that lock
 * would be held through the hook until commit, and one slow hook would stop
 * every task's appends. Here it only delays what readAll may return.
 */
export function createEventStore(options: EventStoreOptions): PostgresEventStore {
  return new PgEventStore(options);
}

class PgEventStore implements PostgresEventStore {
  readonly #db: Kysely<EventStoreDatabase>;
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #maxEventBytes: number;
  readonly #maxTaskCreatedBytes: number;
  readonly #pageSize: number;
  readonly #now: () => Date;
  readonly #appendIdleTimeoutMs: number;

  constructor(options: EventStoreOptions) {
    this.#pool = options.pool;
    this.#db = new Kysely<EventStoreDatabase>({ dialect: new PostgresDialect({ pool: options.pool }) });
    this.#logger = options.logger ?? pino({ level: 'silent' });
    this.#maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.#maxTaskCreatedBytes = options.maxTaskCreatedBytes ?? DEFAULT_MAX_TASK_CREATED_BYTES;
    this.#pageSize = options.pageSize ?? 1000;
    this.#now = options.now ?? (() => new Date());
    this.#appendIdleTimeoutMs = options.appendIdleTimeoutMs ?? DEFAULT_APPEND_IDLE_TIMEOUT_MS;
  }

  async append(
    taskId: string,
    events: readonly NewEvent[],
    options: AppendOptions = {},
  ): Promise<StoredEvent[]> {
    return (await this.appendMany([{ taskId, events, options }]))[0]!;
  }

  async appendMany(
    batches: readonly TaskBatch[],
    manyOptions: AppendManyOptions = {},
  ): Promise<StoredEvent[][]> {
    const prepared = batches.map(({ taskId, events, options = {} }) => ({
      taskId,
      validated: validateEvents(taskId, events, this.#maxEventBytes, this.#maxTaskCreatedBytes),
      key: checkIdempotencyKey(taskId, options.idempotencyKey) ?? null,
      options,
    }));
    const seen = new Set<string>();
    const duplicate = prepared.find((batch) => {
      if (seen.has(batch.taskId)) return true;
      seen.add(batch.taskId);
      return false;
    });
    if (duplicate) {
      throw new InvalidEventError(
        `task ${JSON.stringify(duplicate.taskId)}: appendMany takes each task at most once (append its batches together)`,
      );
    }
    // Locked in task order, so that two appends of overlapping tasks cannot wait for each other.
    const writing = prepared
      .filter((batch) => batch.validated.length > 0)
      .sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0));
    const stored = new Map<string, StoredEvent[]>();
    if (writing.length > 0) {
      const defaultTime = this.#now().toISOString();
      const lit = AppendConnection.literal;
      const list = (values: readonly (string | null)[]): string =>
        `ARRAY[${values.map((value) => (value === null ? 'NULL' : lit(value))).join(', ')}]::text[]`;
      // The row locks serialize appends to these tasks and nothing else; a
      // waiting append then reads each row as the previous one committed it.
      // The same statement announces this append to readers (invariant 4,
      // docs/invariants.md) before any position is taken, and, with a key,
      // looks for a batch an earlier try committed. Announcing before the lock
      // wait only makes readers more cautious (an older floor), never less.
      //
      // A key's lookup and `seen_last_seq` read the statement's snapshot,
      // taken before any lock wait; the locked row is the newest version.
      // When they differ an append committed while this one waited, possibly
      // the earlier try: its batch is then looked up again by a statement of
      // its own, whose snapshot sees it. A task without a row yet has no row
      // here (its batch must create it).
      const { tx, rows } = await AppendConnection.begin<LockedTaskRow & { want_task: string }>(
        this.#pool,
        `SELECT want.task_id AS want_task, t.*,
           (SELECT last_seq FROM tasks WHERE task_id = want.task_id) AS seen_last_seq,
           (SELECT first_seq FROM event_batches b
             WHERE b.task_id = want.task_id AND b.idempotency_key = want.key) AS seen_batch
         FROM event_writer_register() AS registered,
           unnest(${list(writing.map((batch) => batch.taskId))}, ${list(writing.map((batch) => batch.key))})
             WITH ORDINALITY AS want (task_id, key, ord),
           LATERAL (SELECT * FROM tasks WHERE task_id = want.task_id FOR UPDATE) AS t
         ORDER BY want.ord`,
        this.#appendIdleTimeoutMs,
      );
      try {
        const locked = new Map(rows.map((row) => [row.want_task, row]));
        const written: StoredEvent[] = [];
        for (const batch of writing) {
          const { taskId, key, validated, options } = batch;
          const { events, replayed } = await this.#appendLocked(
            tx,
            taskId,
            locked.get(taskId),
            key,
            validated,
            defaultTime,
            options,
          );
          stored.set(taskId, events);
          if (!replayed) written.push(...events);
        }
        if (manyOptions.hook && written.length > 0) await manyOptions.hook(tx, written);
        await tx.commit();
      } catch (err) {
        await tx.rollback();
        throw err;
      }
    }
    return prepared.map((batch) => stored.get(batch.taskId) ?? []);
  }

  async #appendLocked(
    tx: AppendConnection,
    taskId: string,
    task: LockedTaskRow | undefined,
    key: string | null,
    validated: readonly ValidatedEvent[],
    defaultTime: string,
    options: AppendOptions,
  ): Promise<{ events: StoredEvent[]; replayed: boolean }> {
    if (key !== null && task !== undefined) {
      const mayHaveCommitted = task.seen_batch !== null || task.seen_last_seq !== task.last_seq;
      const replayed = mayHaveCommitted
        ? await tx.run(
            sql<EventRow>`
            SELECT ${EVENT_COLUMNS} FROM events JOIN event_batches b USING (task_id)
            WHERE task_id = ${taskId} AND b.idempotency_key = ${key} AND seq BETWEEN b.first_seq AND b.last_seq
            ORDER BY seq`.compile(this.#db),
          )
        : [];
      // Written by an earlier try whose acknowledgement was lost: answer as it would have.
      if (replayed.length > 0) {
        return { events: replayedBatch(taskId, key, replayed.map(toStoredEvent), validated), replayed: true };
      }
    }
    const lastSeq = task?.last_seq ?? 0;
    if (options.expectedSeq !== undefined && options.expectedSeq !== lastSeq) {
      throw new StaleSequenceError(taskId, options.expectedSeq, lastSeq);
    }
    const endedWith =
      task?.finished_at != null ? (TERMINAL_TYPE_OF_STATUS[task.status] ?? task.status) : null;
    checkLogRules(taskId, { lastSeq, endedWith }, validated);
    // After the log rules: a stale run's append to an ended task is told the task ended.
    const attempt = applyFence(taskId, task?.attempt ?? 0, options.fence, validated as NewEvent[]);

    const pending = validated.map(
      (event, index) =>
        ({
          taskId,
          seq: lastSeq + index + 1,
          position: 0,
          type: event.type,
          time: event.time ?? defaultTime,
          data: event.data,
        }) as StoredEvent,
    );
    const countableEnds = await this.#countableNodeEnds(tx, taskId, task === undefined, pending);
    const summary = applyToSummary(task === undefined ? null : summaryOf(task), pending, countableEnds);
    if (task === undefined) await this.#insertTask(tx, summary, options.expectedSeq);

    const batch = JSON.stringify(
      pending.map((event) => ({ type: event.type, time: event.time, data: event.data })),
    );
    // One statement for the whole batch; the ordered subquery makes positions follow seqs.
    const inserted = await tx.run(
      sql<EventRow>`
        WITH inserted AS (
          INSERT INTO events (position, task_id, seq, type, time, data)
          SELECT nextval('event_position_seq'), ${taskId}, ${lastSeq}::integer + e.ord::integer,
                 e.ev->>'type', (e.ev->>'time')::timestamptz, e.ev->'data'
          FROM (SELECT ev, ord FROM jsonb_array_elements(${batch}::jsonb) WITH ORDINALITY AS t (ev, ord) ORDER BY ord) e
          RETURNING ${EVENT_COLUMNS}
        ), summary AS (
          UPDATE tasks SET status = ${summary.status}, done = ${summary.done}, succeeded = ${summary.succeeded},
                 failed = ${summary.failed}, skipped = ${summary.skipped}, last_seq = ${summary.lastSeq},
                 updated_at = ${summary.updatedAt}, finished_at = ${summary.finishedAt},
                 attempt = ${attempt}
          WHERE task_id = ${taskId}
        ), batch AS (
          INSERT INTO event_batches (task_id, idempotency_key, first_seq, last_seq)
          SELECT ${taskId}, ${key}::text, ${lastSeq + 1}::integer, ${lastSeq + pending.length}::integer
          WHERE ${key}::text IS NOT NULL
        )
        SELECT * FROM inserted ORDER BY seq`.compile(this.#db),
    );
    const stored = inserted.map(toStoredEvent);
    if (options.hook) await options.hook(tx, stored);
    return { events: stored, replayed: false };
  }

  /**
   * The nodes named by the batch's node end events that the task has and that
   * have not ended yet: only their first end counts in the summary. Costs a
   * query only for appends that end a node (once per node), through the
   * partial index events_node_end_idx.
   */
  async #countableNodeEnds(
    tx: AppendConnection,
    taskId: string,
    isNew: boolean,
    events: readonly StoredEvent[],
  ): Promise<Set<string>> {
    const created = events.find((event) => event.type === 'TaskCreated');
    if (isNew && created?.type === 'TaskCreated') return new Set(created.data.nodes);
    const ending = new Set<string>();
    for (const event of events) {
      if (event.type === 'NodeSucceeded' || event.type === 'NodeFailed' || event.type === 'NodeSkipped') {
        ending.add(event.data.node);
      }
    }
    if (ending.size === 0) return ending;
    const rows = await tx.run(
      sql<{ node: string }>`
      SELECT n.node FROM unnest(${[...ending]}::text[]) AS n (node)
      WHERE (SELECT data->'nodes' FROM events WHERE task_id = ${taskId} AND seq = 1) ? n.node
        AND NOT EXISTS (
          SELECT 1 FROM events
          WHERE task_id = ${taskId} AND data->>'node' = n.node
            AND type IN ('NodeSucceeded', 'NodeFailed', 'NodeSkipped'))`.compile(this.#db),
    );
    return new Set(rows.map((row) => row.node));
  }

  async #insertTask(
    tx: AppendConnection,
    summary: TaskSummary,
    expectedSeq: number | undefined,
  ): Promise<void> {
    const created = await tx.run(
      sql`
      INSERT INTO tasks (task_id, user_id, action, status, total, done, succeeded, failed, skipped, last_seq,
                         created_at, updated_at, finished_at)
      VALUES (${summary.taskId}, ${summary.userId}, ${summary.action}, ${summary.status}, ${summary.total},
              ${summary.done}, ${summary.succeeded}, ${summary.failed}, ${summary.skipped}, ${summary.lastSeq},
              ${summary.createdAt}, ${summary.updatedAt}, ${summary.finishedAt})
      ON CONFLICT (task_id) DO NOTHING
      RETURNING task_id`.compile(this.#db),
    );
    if (created.length > 0) return;
    // Another append created the task after our FOR UPDATE found nothing.
    const rows = await tx.run(
      sql<{ last_seq: number }>`SELECT last_seq FROM tasks WHERE task_id = ${summary.taskId}`.compile(
        this.#db,
      ),
    );
    const actual = rows[0]?.last_seq ?? 0;
    if (expectedSeq !== undefined) throw new StaleSequenceError(summary.taskId, expectedSeq, actual);
    throw new InvalidEventError(
      `task ${JSON.stringify(summary.taskId)}, event 0: TaskCreated must be the task's first event (the task has ${actual} before it)`,
    );
  }

  async readTask(taskId: string, options: ReadTaskOptions = {}): Promise<StoredEvent[]> {
    const after = checkInteger('after', options.after ?? 0, 0);
    const limit = Math.min(checkInteger('limit', options.limit ?? this.#pageSize, 1), this.#pageSize);
    // One round trip: no row at all means no such task, one row of nulls means
    // no events after `after`. Seqs have no gaps, so the upper bound holds at
    // most `limit` rows whatever plan the statistics lead to.
    const { rows } = await sql<{ known: string } & Partial<EventRow>>`
      SELECT t.task_id AS known, e.*
      FROM tasks t
      LEFT JOIN LATERAL (
        SELECT ${EVENT_COLUMNS} FROM events
        WHERE task_id = t.task_id AND seq > ${after} AND seq <= ${after + limit} ORDER BY seq
      ) e ON true
      WHERE t.task_id = ${taskId}`.execute(this.#db);
    if (rows.length === 0) throw new UnknownTaskError(taskId);
    return rows.filter((row) => row.position != null).map((row) => toStoredEvent(row as EventRow));
  }

  async readAll(options: ReadAllOptions): Promise<StoredEvent[]> {
    return (await this.readAllPage(options)).events;
  }

  async readAllPage(options: ReadAllOptions): Promise<ReadAllPage> {
    const after = checkInteger('afterPosition', options.afterPosition, 0);
    const limit = Math.min(checkInteger('limit', options.limit ?? this.#pageSize, 1), this.#pageSize);
    // Two statements on purpose: the events must be read with a snapshot taken
    // after the readable position was computed (see event_readable_position).
    // The sequence's value, read after it, says whether anything above `after`
    // can exist at all: an idle poll then costs this one round trip.
    const { rows: bounds } = await sql<{ readable: string | null; allocated: string | null }>`
      SELECT event_readable_position() AS readable,
             pg_sequence_last_value('event_position_seq'::regclass) AS allocated`.execute(this.#db);
    const readable = Number(bounds[0]?.readable ?? 0);
    if (Number(bounds[0]?.allocated ?? 0) <= after) return { events: [], heldBackTo: null };
    // The limit applies to the lower bound alone, the readable bound after it:
    // same rows, but the planner always walks the primary key in order. With
    // both bounds, a misestimated range (the tail of an append-only table is
    // where statistics are oldest) made it fetch and sort the whole range.
    // The rows of the page above the readable position are committed (the
    // snapshot is newer than the bound) but held back: only their highest
    // position is returned. One row of nulls means nothing readable.
    const { rows } = await sql<{ held_back_to: string | null } & Partial<EventRow>>`
      WITH page AS MATERIALIZED (
        SELECT * FROM events WHERE position > ${after} ORDER BY position LIMIT ${limit}
      )
      SELECT held.held_back_to, e.*
      FROM (SELECT max(position) AS held_back_to FROM page WHERE position > ${readable}) held
      LEFT JOIN LATERAL (
        SELECT ${EVENT_COLUMNS} FROM page WHERE position <= ${readable} ORDER BY position
      ) e ON true
      ORDER BY e.position`.execute(this.#db);
    const heldBackTo = rows[0]?.held_back_to ?? null;
    return {
      events: rows.filter((row) => row.position != null).map((row) => toStoredEvent(row as EventRow)),
      heldBackTo: heldBackTo === null ? null : Number(heldBackTo),
    };
  }

  async latestSeqs(taskIds: readonly string[]): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    if (taskIds.length === 0) return result;
    const { rows } = await sql<{ task_id: string; last_seq: number }>`
      SELECT task_id, last_seq FROM tasks WHERE task_id = ANY(${[...taskIds]}::text[])`.execute(this.#db);
    for (const row of rows) result.set(row.task_id, row.last_seq);
    return result;
  }

  async headPosition(): Promise<number> {
    const { rows } = await sql<{
      readable: string | null;
    }>`SELECT event_readable_position() AS readable`.execute(this.#db);
    return Number(rows[0]?.readable ?? 0);
  }

  async getTask(taskId: string): Promise<TaskSummary | null> {
    const row = await this.#db
      .selectFrom('tasks')
      .selectAll()
      .select(CLUSTER_OF_TASK)
      .where('task_id', '=', taskId)
      .executeTakeFirst();
    return row === undefined ? null : summaryOf(row as TaskRow);
  }

  async listTasks(options: ListTasksOptions = {}): Promise<TaskSummary[]> {
    const limit = Math.min(checkInteger('limit', options.limit ?? DEFAULT_LIST_LIMIT, 1), MAX_LIST_LIMIT);
    let query = this.#db.selectFrom('tasks').selectAll().select(CLUSTER_OF_TASK);
    if (options.userId !== undefined) query = query.where('user_id', '=', options.userId);
    if (options.status !== undefined) query = query.where('status', '=', options.status);
    const { before } = options;
    if (before !== undefined) {
      // A row comparison, which the (…, created_at DESC, task_id DESC) indexes answer as a range.
      query = query.where(({ eb, refTuple, tuple }) =>
        eb(
          refTuple('created_at', 'task_id'),
          '<',
          tuple(new Date(checkTime('before.createdAt', before.createdAt)), before.taskId),
        ),
      );
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('task_id', 'desc').limit(limit).execute();
    return rows.map((row) => summaryOf(row as TaskRow));
  }

  async deleteExpiredTasks(options: DeleteExpiredTasksOptions = {}): Promise<DeletedTasks> {
    const olderThanMs = checkInteger('olderThanMs', options.olderThanMs ?? DEFAULT_RETENTION_MS, 0);
    const batchSize = checkInteger('batchSize', options.batchSize ?? 500, 1);
    const cutoff = new Date(this.#now().getTime() - olderThanMs).toISOString();
    const total: DeletedTasks = { tasks: 0, events: 0 };
    for (;;) {
      // finished_at is set by the terminal event only, so a running task is never selected.
      // SKIP LOCKED: a task another run is deleting is left to it.
      const { rows } = await sql<{ tasks: string; events: string }>`
        WITH expired AS (
          SELECT task_id FROM tasks
          WHERE finished_at IS NOT NULL AND finished_at < ${cutoff}::timestamptz
          ORDER BY finished_at LIMIT ${batchSize}
          FOR UPDATE SKIP LOCKED
        ), deleted_events AS (
          DELETE FROM events WHERE task_id IN (SELECT task_id FROM expired) RETURNING 1
        ), deleted_tasks AS (
          DELETE FROM tasks WHERE task_id IN (SELECT task_id FROM expired) RETURNING 1
        )
        SELECT (SELECT count(*) FROM deleted_tasks) AS tasks, (SELECT count(*) FROM deleted_events) AS events`.execute(
        this.#db,
      );
      const tasks = Number(rows[0]?.tasks ?? 0);
      total.tasks += tasks;
      total.events += Number(rows[0]?.events ?? 0);
      if (tasks < batchSize) return total;
    }
  }

  startRetentionJob(options: RetentionJobOptions = {}): RetentionJob {
    const intervalMs = checkInteger('intervalMs', options.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS, 1);
    const olderThanMs = options.olderThanMs ?? DEFAULT_RETENTION_MS;
    const logger = (options.logger ?? this.#logger).child({ job: 'event-retention' });
    let stopped = false;
    let failing = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();

    const run = async (): Promise<void> => {
      try {
        const deleted = await this.deleteExpiredTasks({ olderThanMs });
        if (failing) logger.info('event retention works again');
        failing = false;
        if (deleted.tasks > 0) logger.info({ ...deleted, olderThanMs }, 'deleted expired tasks');
      } catch (err) {
        // Logged once per streak of failures, not every interval.
        if (!failing) logger.error({ err }, 'event retention failed; retrying every interval');
        failing = true;
      }
    };
    const schedule = (): void => {
      if (stopped) return;
      running = run().then(() => {
        if (stopped) return;
        timer = setTimeout(schedule, intervalMs);
        timer.unref();
      });
    };
    schedule();
    return {
      stop: async () => {
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
        await running;
      },
    };
  }
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    taskId: row.task_id,
    seq: row.seq,
    position: Number(row.position),
    type: row.type,
    time: row.time,
    data: row.data,
  } as StoredEvent;
}

/**
 * The cluster a task's TaskCreated (seq 1) names, read through the events'
 * primary key rather than kept on the task row: listings are short, and the
 * row's schema stays as it is.
 */
const CLUSTER_OF_TASK = sql<
  string | null
>`(SELECT data->>'cluster' FROM events WHERE events.task_id = tasks.task_id AND seq = 1)`.as('cluster');

/** `cluster` is there when the query selected CLUSTER_OF_TASK; an append's locked row has none (its TaskCreated sets it). */
function summaryOf(row: TaskRow & { cluster?: string | null }): TaskSummary {
  return {
    taskId: row.task_id,
    userId: row.user_id,
    action: row.action as TaskSummary['action'],
    cluster: row.cluster ?? null,
    status: row.status as TaskSummaryStatus,
    total: row.total,
    done: row.done,
    succeeded: row.succeeded,
    failed: row.failed,
    skipped: row.skipped,
    lastSeq: row.last_seq,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    finishedAt: row.finished_at === null ? null : row.finished_at.toISOString(),
  };
}

function checkTime(name: string, value: string): string {
  if (Number.isNaN(Date.parse(value)))
    throw new RangeError(`${name} must be an ISO-8601 time, got ${JSON.stringify(value)}`);
  return value;
}

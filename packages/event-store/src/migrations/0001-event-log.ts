import { sql, type Kysely } from 'kysely';

/**
 * The event log, the task projection, and the two functions that make
 * readAll safe against late commits (invariant 4 in docs/invariants.md; see positions.ts).
 * A migration never changes once released: later changes get a new file.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // CACHE 1 (the default) matters: the reader reads the sequence's last value
  // as "everything up to here has been handed out", which a per-session cache
  // of pre-allocated values would make false.
  await sql`CREATE SEQUENCE event_position_seq AS bigint CACHE 1`.execute(db);

  await sql`
    CREATE TABLE tasks (
      task_id text PRIMARY KEY,
      user_id text NOT NULL,
      action text NOT NULL,
      status text NOT NULL,
      total integer NOT NULL,
      done integer NOT NULL,
      succeeded integer NOT NULL,
      failed integer NOT NULL,
      skipped integer NOT NULL,
      last_seq integer NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      finished_at timestamptz,
      CONSTRAINT tasks_finished_when_terminal
        CHECK ((finished_at IS NULL) = (status NOT IN ('completed', 'cancelled', 'failed')))
    )`.execute(db);
  // listTasks: newest first, by user, by user and status, or by status alone.
  await sql`CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, task_id DESC)`.execute(
    db,
  );
  await sql`CREATE INDEX tasks_user_status_created_idx ON tasks (user_id, status, created_at DESC, task_id DESC)`.execute(
    db,
  );
  await sql`CREATE INDEX tasks_status_created_idx ON tasks (status, created_at DESC, task_id DESC)`.execute(
    db,
  );
  await sql`CREATE INDEX tasks_created_idx ON tasks (created_at DESC, task_id DESC)`.execute(db);
  // Retention finds finished tasks by age; running tasks are not in this index at all.
  await sql`CREATE INDEX tasks_finished_idx ON tasks (finished_at) WHERE finished_at IS NOT NULL`.execute(db);

  await sql`
    CREATE TABLE events (
      position bigint PRIMARY KEY,
      task_id text NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
      seq integer NOT NULL CHECK (seq > 0),
      type text NOT NULL,
      time timestamptz NOT NULL,
      data jsonb NOT NULL,
      CONSTRAINT events_task_seq_key UNIQUE (task_id, seq)
    )`.execute(db);

  // An append announces, before it takes positions, a floor below all the
  // positions it will take: a shared transaction-level advisory lock whose key
  // encodes the sequence's current last value. The lock is visible in pg_locks
  // at once (not subject to MVCC) and disappears only after the commit is
  // visible. Key: (0x4E520000 + floor / 2^32, floor mod 2^32 as int4), the
  // two-integer form (objsubid 2 in pg_locks), positions up to 2^48.
  await sql`
    CREATE FUNCTION event_writer_register() RETURNS void
    LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      floor_position bigint := coalesce(pg_sequence_last_value('event_position_seq'::regclass), 0);
      low bigint := floor_position % 4294967296;
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(
        (1313996800 + floor_position / 4294967296)::integer,
        (CASE WHEN low >= 2147483648 THEN low - 4294967296 ELSE low END)::integer);
    END
    $fn$`.execute(db);

  // The highest position readAll may return: every position up to it has
  // either committed or will never commit. Read the sequence FIRST, then the
  // registrations: a writer that took a position at or below the sequence
  // value had registered before we read it, so it is either still in pg_locks
  // (and bounds the result below its positions) or already visible.
  // PL/pgSQL runs the two statements in this order; the caller reads the
  // events in a later statement, with a snapshot taken after both.
  await sql`
    CREATE FUNCTION event_readable_position() RETURNS bigint
    LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      allocated bigint;
      oldest_writer_floor bigint;
    BEGIN
      allocated := coalesce(pg_sequence_last_value('event_position_seq'::regclass), 0);
      SELECT min((l.classid::bigint - 1313996800) * 4294967296 + l.objid::bigint)
        INTO oldest_writer_floor
        FROM pg_locks l
        WHERE l.locktype = 'advisory'
          AND l.objsubid = 2
          AND l.classid::bigint BETWEEN 1313996800 AND 1313996800 + 65535
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());
      RETURN least(allocated, oldest_writer_floor);
    END
    $fn$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION event_readable_position()`.execute(db);
  await sql`DROP FUNCTION event_writer_register()`.execute(db);
  await sql`DROP TABLE events`.execute(db);
  await sql`DROP TABLE tasks`.execute(db);
  await sql`DROP SEQUENCE event_position_seq`.execute(db);
}

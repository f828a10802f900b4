import { sql, type Kysely } from 'kysely';

/**
 * The audit trail (invariant 11): who asked for what, from where, what the
 * policy said, and what happened to each node. It has no foreign key to the
 * tasks it names, so it outlives event retention, and its own retention
 * deletes by age. Rows are never updated: a task's outcome is a row of its
 * own, appended by a trigger in the same transaction as the terminal event,
 * so no writer (worker or gateway) can end a task without it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE audit_log (
      id bigserial PRIMARY KEY,
      time timestamptz NOT NULL DEFAULT now(),
      kind text NOT NULL CHECK (kind IN ('request', 'outcome')),
      user_id text NOT NULL,
      role text,
      client_address text,
      action text NOT NULL,
      task_id text,
      nodes text[] NOT NULL DEFAULT '{}',
      node_count integer NOT NULL DEFAULT 0,
      selector text,
      cluster text,
      reason text,
      params jsonb,
      decision text CHECK (decision IN ('allowed', 'denied')),
      rule text,
      message text,
      status text,
      outcome jsonb
    )`.execute(db);
  await sql`CREATE INDEX audit_log_time_idx ON audit_log (time)`.execute(db);
  await sql`CREATE INDEX audit_log_user_idx ON audit_log (user_id, id DESC)`.execute(db);
  await sql`CREATE INDEX audit_log_task_idx ON audit_log (task_id) WHERE task_id IS NOT NULL`.execute(db);
  await sql`CREATE INDEX audit_log_nodes_idx ON audit_log USING gin (nodes)`.execute(db);

  await sql`
    CREATE FUNCTION audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    BEGIN
      RAISE EXCEPTION 'audit_log is append-only: rows are never updated';
    END
    $fn$`.execute(db);
  await sql`
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`.execute(db);

  // The outcome per node, from the one end event of each node (a node a
  // resumed worker reported twice counts once: the later report wins); a
  // cancelled task's nodes that never started are listed as such.
  await sql`
    CREATE FUNCTION audit_task_ended() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    DECLARE
      owner text;
      task_action text;
      result jsonb;
    BEGIN
      SELECT user_id, action INTO owner, task_action FROM tasks WHERE task_id = NEW.task_id;
      SELECT coalesce(jsonb_object_agg(ends.node, ends.result), '{}') INTO result
      FROM (
        SELECT DISTINCT ON (e.data->>'node') e.data->>'node' AS node,
               CASE e.type
                 WHEN 'NodeSucceeded' THEN jsonb_build_object('status', 'succeeded')
                 WHEN 'NodeFailed' THEN jsonb_build_object('status', 'failed', 'error', e.data->'error')
                 ELSE jsonb_build_object('status', 'skipped', 'reason', e.data->'reason')
               END AS result
        FROM events e
        WHERE e.task_id = NEW.task_id AND e.type IN ('NodeSucceeded', 'NodeFailed', 'NodeSkipped')
        ORDER BY e.data->>'node', e.seq DESC
      ) ends;
      IF NEW.type = 'TaskCancelled' THEN
        SELECT coalesce(jsonb_object_agg(n, '{"status": "not started"}'::jsonb), '{}') || result INTO result
        FROM jsonb_array_elements_text(coalesce(NEW.data->'notStarted', '[]'::jsonb)) AS n;
      END IF;
      INSERT INTO audit_log (kind, user_id, action, task_id, nodes, node_count, status, outcome, message)
      VALUES ('outcome', coalesce(owner, ''), coalesce(task_action, ''), NEW.task_id,
              ARRAY(SELECT jsonb_object_keys(result) ORDER BY 1),
              (SELECT count(*) FROM jsonb_object_keys(result))::integer,
              lower(substr(NEW.type, 5)), result, NEW.data->>'error');
      RETURN NULL;
    END
    $fn$`.execute(db);
  await sql`
    CREATE TRIGGER events_audit_task_ended AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.type IN ('TaskCompleted', 'TaskFailed', 'TaskCancelled'))
    EXECUTE FUNCTION audit_task_ended()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TRIGGER events_audit_task_ended ON events`.execute(db);
  await sql`DROP FUNCTION audit_task_ended()`.execute(db);
  await sql`DROP TABLE audit_log`.execute(db);
  await sql`DROP FUNCTION audit_log_append_only()`.execute(db);
}

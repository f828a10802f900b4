import { sql, type Kysely } from 'kysely';

/**
 * The fence of invariant 9: the highest TaskStarted attempt of each task,
 * kept on the task row that every append already locks, so checking a
 * fenced append costs no extra query. Backfilled from the log.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tasks ADD COLUMN attempt integer NOT NULL DEFAULT 0`.execute(db);
  await sql`
    UPDATE tasks t SET attempt = s.attempt
    FROM (SELECT task_id, max(coalesce((data->>'attempt')::integer, 1)) AS attempt
            FROM events WHERE type = 'TaskStarted' GROUP BY task_id) s
    WHERE t.task_id = s.task_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tasks DROP COLUMN attempt`.execute(db);
}

import { sql, type Kysely } from 'kysely';

/**
 * Finds whether a node of a task already ended, so that the task summary
 * counts each node once, as the fold does, even when a resumed worker reports
 * a node twice. Partial: only the one end event per node is indexed, not the
 * stream of progress events.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE INDEX events_node_end_idx ON events (task_id, (data->>'node'))
    WHERE type IN ('NodeSucceeded', 'NodeFailed', 'NodeSkipped')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX events_node_end_idx`.execute(db);
}

import { sql, type Kysely } from 'kysely';

/**
 * Idempotent appends: the idempotency key of each batch that carried one,
 * with the seqs it was given. An append retried after a lost acknowledgement
 * finds its key here, under the task's row lock, and returns what the first
 * try stored instead of writing it again. Deleted with its task.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE event_batches (
      task_id text NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
      idempotency_key text NOT NULL,
      first_seq integer NOT NULL,
      last_seq integer NOT NULL,
      PRIMARY KEY (task_id, idempotency_key)
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE event_batches`.execute(db);
}

import type { AppendTransaction } from '@nodebatch/progress';
import type { CompiledQuery } from 'kysely';
import pg from 'pg';
import { AppendSessionLostError } from './errors.js';

/**
 * The transaction of one append, on one connection of the pool, in as few
 * round trips as the protocol allows.
 *
 * An append used to cost five round trips (BEGIN, the task lock, the insert,
 * the hook's NOTIFY, COMMIT), and on a small machine every round trip is a
 * socket write that wakes a PostgreSQL backend: measured, the writes were a
 * third of a worker's CPU per event. Statements whose values are known
 * before they run go out together in one simple-protocol query, their
 * values as escaped literals (`pg.escapeLiteral`): BEGIN with the task lock,
 * and the NOTIFYs with COMMIT (PostgreSQL delivers a notification at commit
 * anyway). What remains on its own is the insert, whose parameters and
 * answer the store needs in between.
 */
export class AppendConnection implements AppendTransaction {
  readonly #client: pg.PoolClient;
  readonly #atCommit: string[] = [];
  #open = true;
  /**
   * What the connection failed with while no query was running: the server
   * ended the session (the idle-in-transaction timeout, a restart). The pool
   * listens for client errors only while a connection is idle in the pool, so
   * without this listener such an error would end the process.
   */
  #lost: Error | undefined;
  readonly #onError = (err: Error): void => {
    this.#lost ??= err;
  };

  private constructor(client: pg.PoolClient) {
    this.#client = client;
    client.on('error', this.#onError);
  }

  /**
   * Takes a connection, starts a READ COMMITTED transaction (whatever the
   * server's default: a waiting append must read the row as the append before
   * it committed it, not fail to serialize) and runs `first` in the same
   * round trip. `first` must have no parameters; it gets its values through
   * {@link literal}.
   *
   * An append holds its task's row lock and its writer announcement (which
   * bounds what readAll returns, for every task) until it ends. A process
   * that stops between two statements (frozen, swapped out, a debugger)
   * would hold both for as long as it is stopped: the job's next worker
   * could not append and no reader would see anything newer. So the server
   * ends the session once the transaction has waited `idleTimeoutMs` for
   * its client (SET LOCAL: only this transaction, also behind a pooler in
   * transaction mode); the stopped append then fails and is retried.
   */
  static async begin<Row>(
    pool: pg.Pool,
    first: string,
    idleTimeoutMs: number,
  ): Promise<{ tx: AppendConnection; rows: Row[] }> {
    const client = await pool.connect();
    const tx = new AppendConnection(client);
    try {
      const results = (await client.query(
        `START TRANSACTION ISOLATION LEVEL READ COMMITTED; ` +
          `SET LOCAL idle_in_transaction_session_timeout = ${Math.max(1, Math.round(idleTimeoutMs))}; ${first}`,
      )) as unknown as pg.QueryResult[];
      return { tx, rows: (results[2]?.rows ?? []) as Row[] };
    } catch (err) {
      await tx.rollback();
      throw err;
    }
  }

  /** A value as an SQL literal, for the statements sent without parameters. */
  static literal(value: string): string {
    return pg.escapeLiteral(value);
  }

  /** Runs a query built by kysely (extended protocol, with its parameters). */
  async run<Row>(compiled: CompiledQuery<Row>): Promise<Row[]> {
    this.#throwIfLost();
    const result = await this.#client.query(compiled.sql, [...compiled.parameters]);
    return result.rows as Row[];
  }

  /** For hooks: a statement that runs now, inside the transaction. */
  async query(text: string, values?: readonly unknown[]): Promise<unknown> {
    this.#throwIfLost();
    return this.#client.query(text, values === undefined ? undefined : [...values]);
  }

  /** For hooks: a NOTIFY sent in the same round trip as COMMIT. */
  notify(channel: string, payload: string): void {
    this.#atCommit.push(
      `SELECT pg_notify(${AppendConnection.literal(channel)}, ${AppendConnection.literal(payload)})`,
    );
  }

  /**
   * Sends what waits for the commit, then COMMIT; returns the connection to
   * the pool. On a failure the caller rolls back ({@link rollback}).
   */
  async commit(): Promise<void> {
    this.#throwIfLost();
    const results = (await this.#client.query([...this.#atCommit, 'COMMIT'].join('; '))) as
      pg.QueryResult | pg.QueryResult[];
    const last = Array.isArray(results) ? results[results.length - 1] : results;
    // PostgreSQL answers COMMIT with ROLLBACK when an earlier error left the
    // transaction aborted; then nothing was written.
    if (last?.command === 'ROLLBACK') throw new Error('the append transaction was rolled back at COMMIT');
    this.#release();
  }

  /**
   * Rolls back and returns the connection. A connection whose ROLLBACK fails
   * is broken (or in an unknown state): it is destroyed, not reused.
   */
  async rollback(): Promise<void> {
    if (!this.#open) return;
    try {
      await this.#client.query('ROLLBACK');
      this.#release();
    } catch (err) {
      this.#release(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** node-postgres would only say the client "is not queryable"; this says why. */
  #throwIfLost(): void {
    if (this.#lost) throw new AppendSessionLostError(this.#lost);
  }

  #release(destroy?: Error): void {
    if (!this.#open) return;
    this.#open = false;
    this.#client.removeListener('error', this.#onError);
    this.#client.release(destroy ?? this.#lost);
  }
}

import type pg from 'pg';

/**
 * Database load of one bench database, read from an admin connection to
 * another database so the readings do not count themselves. PostgreSQL
 * flushes a backend's counters at most once a second (and when it exits), so
 * windows are read with that lag in mind.
 */
export class DatabaseLoad {
  #peakConnections = 0;
  #timer: NodeJS.Timeout | undefined;

  readonly #admin: pg.Client;
  readonly #database: string;

  constructor(admin: pg.Client, database: string) {
    this.#admin = admin;
    this.#database = database;
  }

  async commits(): Promise<number> {
    await this.#admin.query('SELECT pg_stat_clear_snapshot()');
    const result = await this.#admin.query<{ xact_commit: string }>(
      'SELECT xact_commit FROM pg_stat_database WHERE datname = $1',
      [this.#database],
    );
    return Number(result.rows[0]?.xact_commit ?? 0);
  }

  async connections(): Promise<number> {
    const result = await this.#admin.query<{ count: string }>(
      'SELECT count(*) FROM pg_stat_activity WHERE datname = $1',
      [this.#database],
    );
    return Number(result.rows[0]?.count ?? 0);
  }

  /** Samples pg_stat_activity every 250 ms until stopSampling(); peakConnections is the highest count. */
  startSampling(): void {
    this.#peakConnections = 0;
    const sample = () => {
      this.connections().then(
        (count) => {
          this.#peakConnections = Math.max(this.#peakConnections, count);
          if (this.#timer) this.#timer = setTimeout(sample, 250);
        },
        () => undefined,
      );
    };
    this.#timer = setTimeout(sample, 0);
  }

  stopSampling(): number {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#peakConnections;
  }
}

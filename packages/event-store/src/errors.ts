import { NodebatchError } from '@nodebatch/progress';

export { EventTooLargeError } from '@nodebatch/progress';

/** The migrations could not be applied; the database is left at the last applied version. */
export class MigrationError extends NodebatchError {
  readonly migration: string | null;

  constructor(migration: string | null, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(
      'MIGRATION_FAILED',
      migration === null
        ? `event store migrations failed${reason}`
        : `event store migration ${JSON.stringify(migration)} failed${reason}`,
      options,
    );
    this.migration = migration;
  }
}

/**
 * The database ended an append's session while its transaction was open (the
 * idle-in-transaction timeout, a restart, a terminated backend): nothing of
 * the append was written, and it may be tried again. The server's reason,
 * with its code (25P03 for the timeout), is the cause.
 */
export class AppendSessionLostError extends NodebatchError {
  constructor(cause: Error) {
    super(
      'APPEND_SESSION_LOST',
      `the database ended the append's session while its transaction was open, so nothing of it was written: ${cause.message}`,
      { cause },
    );
  }
}

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

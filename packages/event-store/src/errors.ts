import { NodebatchError } from '@nodebatch/progress';

/**
 * One event's data is larger than the store accepts. The limit keeps rows
 * small enough for fast reads and for transports that carry whole events
 * (PostgreSQL NOTIFY payloads stop at 8000 bytes); large outputs belong
 * elsewhere, with a reference in the event.
 */
export class EventTooLargeError extends NodebatchError {
  readonly taskId: string;
  /** Index of the offending event in the appended batch. */
  readonly index: number;
  readonly type: string;
  readonly bytes: number;
  readonly limitBytes: number;

  constructor(taskId: string, index: number, type: string, bytes: number, limitBytes: number) {
    super(
      'EVENT_TOO_LARGE',
      `task ${JSON.stringify(taskId)}, event ${index} (${type}): data is ${bytes} bytes of JSON, over the limit of ${limitBytes}; nothing was appended`,
    );
    this.taskId = taskId;
    this.index = index;
    this.type = type;
    this.bytes = bytes;
    this.limitBytes = limitBytes;
  }
}

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

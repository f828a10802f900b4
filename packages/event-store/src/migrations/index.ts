import type { Migration, MigrationProvider } from 'kysely/migration';
import * as eventLog from './0001-event-log.js';
import * as nodeEndIndex from './0002-node-end-index.js';
import * as taskAttempt from './0003-task-attempt.js';
import * as auditLog from './0004-audit-log.js';
import * as eventBatches from './0005-event-batches.js';

/**
 * Every migration, in order. Imported statically rather than read from a
 * folder so that the same list works from source, from dist and bundled.
 */
export const EVENT_STORE_MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001-event-log': eventLog,
  '0002-node-end-index': nodeEndIndex,
  '0003-task-attempt': taskAttempt,
  '0004-audit-log': auditLog,
  '0005-event-batches': eventBatches,
};

export const eventStoreMigrationProvider: MigrationProvider = {
  getMigrations: async () => ({ ...EVENT_STORE_MIGRATIONS }),
};

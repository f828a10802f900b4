export {
  InvalidEventError,
  StaleSequenceError,
  TaskAlreadyEndedError,
  UnknownTaskError,
} from '@nodebatch/progress';
export { AppendSessionLostError, EventTooLargeError, MigrationError } from './errors.js';
export {
  createEventStore,
  DEFAULT_APPEND_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_EVENT_BYTES,
  DEFAULT_MAX_TASK_CREATED_BYTES,
  DEFAULT_RETENTION_MS,
  type DeletedTasks,
  type DeleteExpiredTasksOptions,
  type EventStoreOptions,
  type ListTasksOptions,
  type TaskListCursor,
  type PostgresEventStore,
  type RetentionJob,
  type RetentionJobOptions,
} from './postgres-event-store.js';
export {
  pendingMigrations,
  runMigrations,
  type MigrationsOutcome,
  type RunMigrationsOptions,
} from './run-migrations.js';
export { TASK_SUMMARY_STATUSES, type TaskSummary, type TaskSummaryStatus } from './task-summary.js';
export {
  createAuditLog,
  DEFAULT_AUDIT_RETENTION_MS,
  type AuditEntry,
  type AuditLog,
  type AuditLogOptions,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
  type AuditRetentionJob,
} from './audit-log.js';

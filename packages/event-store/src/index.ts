export {
  InvalidEventError,
  StaleSequenceError,
  TaskAlreadyEndedError,
  UnknownTaskError,
} from '@nodebatch/progress';
export { EventTooLargeError, MigrationError } from './errors.js';
export {
  createEventStore,
  DEFAULT_MAX_EVENT_BYTES,
  DEFAULT_RETENTION_MS,
  type DeletedTasks,
  type DeleteExpiredTasksOptions,
  type EventStoreOptions,
  type ListTasksOptions,
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

import type { ColumnType, Generated } from 'kysely';

/** Row types of the tables migrations/ creates, as node-postgres returns them. */

/** bigint comes back as a string (it may exceed 2^53); the store converts positions to numbers. */
type Int8 = ColumnType<string, string | number | bigint, string | number | bigint>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface EventsTable {
  position: Int8;
  task_id: string;
  seq: number;
  type: string;
  time: Timestamp;
  data: ColumnType<unknown, string, string>;
}

export interface TasksTable {
  task_id: string;
  user_id: string;
  action: string;
  status: string;
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  skipped: number;
  last_seq: number;
  /** The highest TaskStarted attempt: the fence of appends (migration 0003). */
  attempt: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
  finished_at: ColumnType<Date | null, Date | string | null, Date | string | null>;
}

/** One appended batch that carried an idempotency key (migration 0005). */
export interface EventBatchesTable {
  task_id: string;
  idempotency_key: string;
  first_seq: number;
  last_seq: number;
}

export interface EventStoreDatabase {
  events: EventsTable;
  tasks: TasksTable;
  event_batches: EventBatchesTable;
}

export type EventRow = {
  position: string;
  task_id: string;
  seq: number;
  type: string;
  /** ISO-8601 UTC with milliseconds, formatted by the query. */
  time: string;
  data: unknown;
};

export type TaskRow = {
  task_id: string;
  user_id: string;
  action: string;
  status: string;
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  skipped: number;
  last_seq: number;
  attempt: number;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
};

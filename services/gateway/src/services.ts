import type { NewEvent, NotifierInfo, StoredEvent } from '@nodebatch/progress';
import type { Observable } from 'rxjs';

/**
 * What the gateway needs from the rest of nodebatch. `createRuntime` and
 * `createBatchQueue` (@nodebatch/runtime) provide all of it; the gateway only
 * depends on these shapes so each route says exactly what it uses.
 */
export interface GatewayServices {
  /** The database the event log lives in; /readyz runs a query on it. */
  database: { query(text: string): Promise<unknown> };
  tasks: TaskCatalog;
  notifier: GatewayNotifier;
  streams: { events$(taskId: string, options?: { after?: number }): Observable<StoredEvent> };
  queue: { enqueue(data: { taskId: string }): Promise<unknown> };
}

/** One row of a task list, as the event store summarises it. */
export interface TaskListItem {
  taskId: string;
  userId: string;
  status: string;
}

/** Read side of the event log the routes use. */
export interface TaskCatalog {
  /** Rejects with UnknownTaskError for a task that was never created. */
  readTask(taskId: string, options?: { after?: number; limit?: number }): Promise<StoredEvent[]>;
  listTasks(options: { userId?: string; status?: string; limit?: number }): Promise<readonly TaskListItem[]>;
}

export interface GatewayNotifier {
  readonly info: NotifierInfo;
  readonly info$: Observable<NotifierInfo>;
  append(taskId: string, events: NewEvent[], options?: { expectedSeq?: number }): Promise<StoredEvent[]>;
}

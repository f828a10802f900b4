import type { NewEvent, NotifierInfo, StoredEvent } from '@nodebatch/progress';
import type { Observable } from 'rxjs';
import type { AuditLog, PostgresEventStore } from '@nodebatch/event-store';

/**
 * What the gateway needs from the rest of nodebatch. `createRuntime` and
 * `createBatchQueue` (@nodebatch/runtime, one per cluster) provide all of it; the gateway only
 * depends on these shapes so each route says exactly what it uses.
 */
export interface GatewayServices {
  /** The database the event log lives in; /readyz runs a query on it. */
  database: { query(text: string): Promise<unknown> };
  tasks: TaskCatalog;
  notifier: GatewayNotifier;
  streams: { events$(taskId: string, options?: { after?: number }): Observable<StoredEvent> };
  /** The batch queues, one per cluster: a batch is enqueued on its cluster's. */
  queue: { enqueue(data: { taskId: string }, cluster: string): Promise<unknown> };
  /** The audit trail: requests and refusals are recorded, admins read it. */
  audit: Pick<AuditLog, 'record' | 'list' | 'acceptedTaskOwner'>;
}

/** Read side of the event log the routes use: a task's events (the truth) and the listing projection. */
export type TaskCatalog = Pick<PostgresEventStore, 'readTask' | 'listTasks' | 'getTask'>;

export interface GatewayNotifier {
  readonly info: NotifierInfo;
  readonly info$: Observable<NotifierInfo>;
  append(taskId: string, events: NewEvent[], options?: { expectedSeq?: number }): Promise<StoredEvent[]>;
}

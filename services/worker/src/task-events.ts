import type { EventReader, StoredEvent } from '@nodebatch/progress';
import type { Observable } from 'rxjs';

/** Every event of a task, in seq order, read page by page. */
export async function readTaskEvents(store: EventReader, taskId: string): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for (;;) {
    const page = await store.readTask(taskId, { after: events.at(-1)?.seq ?? 0 });
    if (page.length === 0) return events;
    events.push(...page);
  }
}

/** A task's events as they are appended (ProgressStreams.events$ fits): how the worker hears of CancelRequested. */
export interface TaskEventFeed {
  events$(taskId: string, options?: { after?: number }): Observable<StoredEvent>;
}

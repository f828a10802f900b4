import type { StoredEvent } from '@nodebatch/progress';
import type { Observable } from 'rxjs';

/** A task's events as they are appended (ProgressStreams.events$ fits): how the worker hears of CancelRequested. */
export interface TaskEventFeed {
  events$(taskId: string, options?: { after?: number }): Observable<StoredEvent>;
}

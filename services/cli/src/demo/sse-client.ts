import { StoredEventSchema, type StoredEvent } from '@nodebatch/progress';
import { EventSourceParserStream } from 'eventsource-parser/stream';

export interface TaskEventStreamOptions {
  /** Resume after this seq (sent as Last-Event-ID). Default 0. */
  after?: number;
  signal?: AbortSignal;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Reconnections allowed after the stream drops before the terminal event. Default 5. */
  maxReconnects?: number;
}

/** The gateway answered something other than an event stream. */
export class EventStreamError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'EventStreamError';
  }
}

/**
 * A task's events from a gateway's SSE endpoint, each validated. When the
 * connection drops before the terminal event it reconnects with
 * Last-Event-ID, so the caller sees every seq once, in order.
 */
export async function* streamTaskEvents(
  baseUrl: string,
  taskId: string,
  options: TaskEventStreamOptions = {},
): AsyncGenerator<StoredEvent> {
  let lastSeq = options.after ?? 0;
  let reconnects = 0;
  for (;;) {
    const response = await fetch(new URL(`/api/v1/tasks/${encodeURIComponent(taskId)}/events`, baseUrl), {
      headers: { accept: 'text/event-stream', 'last-event-id': String(lastSeq), ...options.headers },
      signal: options.signal ?? null,
    });
    if (!response.ok || !response.body) {
      throw new EventStreamError(
        `GET ${baseUrl} task ${taskId} events: HTTP ${response.status}`,
        response.status,
      );
    }
    const messages = response.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream());
    let ended = false;
    try {
      for await (const message of messages) {
        if (message.event === 'end') {
          ended = true;
          break;
        }
        if (!message.id) continue;
        const event = StoredEventSchema.parse(JSON.parse(message.data));
        if (event.seq <= lastSeq) continue;
        lastSeq = event.seq;
        yield event;
        if (['TaskCompleted', 'TaskCancelled', 'TaskFailed'].includes(event.type)) ended = true;
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      // A dropped connection: reconnect below and resume after lastSeq.
    }
    if (ended) return;
    reconnects += 1;
    if (reconnects > (options.maxReconnects ?? 5)) {
      throw new EventStreamError(
        `the event stream of task ${taskId} ended ${reconnects} times before the task did`,
      );
    }
  }
}

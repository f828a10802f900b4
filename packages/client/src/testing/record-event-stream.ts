import { openEventStream, type OpenEventStreamOptions } from '../event-stream.js';
import type { SseMessage } from '../sse-parser.js';

/**
 * For tests of the gateway's stream itself: one connection recorded as it
 * goes, without reconnecting or deduplicating (what watchTask does), so a test
 * sees exactly what the gateway sent. Exported for testing only.
 */
export interface EventStreamRecording {
  readonly status: number;
  readonly headers: Headers;
  /** Messages received so far, in order. */
  readonly messages: readonly SseMessage[];
  /** Comment lines (heartbeats) received so far. */
  readonly comments: number;
  /** The `id:` of the last message that had one: what EventSource sends as Last-Event-ID. */
  readonly lastEventId: string | undefined;
  /** Settles when the server ends the response (true) or the connection breaks or is closed (false). */
  readonly ended: Promise<boolean>;
  /** Resolves once `predicate` holds for the messages so far; rejects if the stream ends first. */
  waitFor(predicate: (messages: readonly SseMessage[]) => boolean): Promise<void>;
  close(): void;
}

/** Opens and records one event stream; rejects like openEventStream on an error status. */
export async function recordEventStream(
  url: string | URL,
  options: Pick<OpenEventStreamOptions, 'headers' | 'fetch'> = {},
): Promise<EventStreamRecording> {
  const messages: SseMessage[] = [];
  let comments = 0;
  let lastEventId: string | undefined;
  let finished: boolean | undefined;
  const waiters = new Set<{
    predicate: (m: readonly SseMessage[]) => boolean;
    done: (err?: Error) => void;
  }>();
  const check = () => {
    for (const waiter of waiters) {
      if (waiter.predicate(messages)) {
        waiters.delete(waiter);
        waiter.done();
      } else if (finished !== undefined) {
        waiters.delete(waiter);
        waiter.done(
          new Error(`the stream ended after ${messages.length} messages before the awaited condition`),
        );
      }
    }
  };
  const stream = await openEventStream(url, { ...options, onComment: () => (comments += 1) });
  const ended = (async () => {
    try {
      for await (const message of stream.messages()) {
        messages.push(message);
        if (message.id !== undefined) lastEventId = message.id;
        check();
      }
      return true;
    } catch {
      return false;
    }
  })().then((clean) => {
    finished = clean;
    check();
    return clean;
  });
  return {
    status: stream.status,
    headers: stream.headers,
    messages,
    get comments() {
      return comments;
    },
    get lastEventId() {
      return lastEventId;
    },
    ended,
    waitFor(predicate) {
      return new Promise<void>((resolve, reject) => {
        waiters.add({ predicate, done: (err) => (err ? reject(err) : resolve()) });
        check();
      });
    },
    close: () => stream.close(),
  };
}

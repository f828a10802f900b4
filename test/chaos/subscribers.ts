import { recordEventStream, type EventStreamRecording } from '@nodebatch/client/testing';
import { isTerminalType, sleep, type StoredEvent } from '@nodebatch/progress';
import WebSocket from 'ws';

/**
 * A subscriber of one task that behaves as a browser does: it follows the
 * task's stream, and when the connection breaks it reconnects to the next
 * gateway and resumes after the last seq it received (Last-Event-ID for SSE,
 * `after` for the WebSocket). It never deduplicates or reorders: `received`
 * is every event every connection delivered, in arrival order, so a test can
 * compare it with the log.
 */
export interface ChaosSubscriber {
  readonly kind: 'sse' | 'ws';
  readonly taskId: string;
  readonly received: readonly StoredEvent[];
  /** Connections opened, the first included. */
  readonly connections: number;
  /** Resolves once a terminal event arrived; rejects when `stop()` came first. */
  readonly done: Promise<void>;
  stop(): void;
}

interface SubscriberOptions {
  taskId: string;
  /** Gateway base URLs; the subscriber starts on the first and moves on after each break. */
  urls: readonly string[];
  token: string;
}

/** The seq of the last event received, what a reconnect resumes after. */
function lastSeq(received: readonly StoredEvent[]): number {
  return received.at(-1)?.seq ?? 0;
}

/** One connection of a subscriber: `ended` is true once the task's end arrived, false when it broke. */
interface Connection {
  ended: Promise<boolean>;
  close(): void;
}

/**
 * The reconnect loop both kinds share: connect to the next gateway, resuming
 * after the last seq received, until a connection delivered the task's end.
 */
function follow(
  kind: ChaosSubscriber['kind'],
  options: SubscriberOptions,
  connect: (url: string, received: StoredEvent[], opened: () => void) => Connection,
): ChaosSubscriber {
  const received: StoredEvent[] = [];
  let connections = 0;
  let stopped = false;
  let current: Connection | undefined;
  const done = (async () => {
    for (let attempt = 0; !stopped; attempt++) {
      current = connect(options.urls[attempt % options.urls.length]!, received, () => (connections += 1));
      if (await current.ended.catch(() => false)) return;
      await sleep(250);
    }
    throw new Error(`${kind} subscriber of ${options.taskId} stopped before the task ended`);
  })();
  return {
    kind,
    taskId: options.taskId,
    received,
    get connections() {
      return connections;
    },
    done,
    stop: () => {
      stopped = true;
      current?.close();
    },
  };
}

/** Follows one task over SSE, reconnecting with Last-Event-ID after every break. */
export function sseSubscriber(options: SubscriberOptions): ChaosSubscriber {
  return follow('sse', options, (url, received, opened) => {
    let recording: EventStreamRecording | undefined;
    let closed = false;
    const ended = (async () => {
      const after = lastSeq(received);
      recording = await recordEventStream(`${url}/api/v1/tasks/${options.taskId}/events`, {
        headers: {
          authorization: `Bearer ${options.token}`,
          ...(after > 0 && { 'last-event-id': String(after) }),
        },
      });
      opened();
      if (closed) recording.close();
      const stream = recording;
      let seen = 0;
      const take = () => {
        for (; seen < stream.messages.length; seen++) {
          const message = stream.messages[seen]!;
          if (message.data) received.push(JSON.parse(message.data) as StoredEvent);
        }
      };
      await stream.waitFor(() => (take(), false)).catch(() => undefined);
      take();
      return received.some((event) => isTerminalType(event.type));
    })();
    return {
      ended,
      close: () => {
        closed = true;
        recording?.close();
      },
    };
  });
}

/** Follows one task over the WebSocket, resubscribing with `after` after every break. */
export function wsSubscriber(options: SubscriberOptions): ChaosSubscriber {
  return follow('ws', options, (url, received, opened) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/progress/ws`, {
      headers: { authorization: `Bearer ${options.token}` },
    });
    const ended = new Promise<boolean>((resolve) => {
      let finished = false;
      ws.on('open', () => {
        opened();
        ws.send(JSON.stringify({ type: 'subscribe', taskId: options.taskId, after: lastSeq(received) }));
      });
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as
          | { type: 'event'; event: StoredEvent }
          | { type: 'end'; taskId: string }
          | { type: 'error'; code: string; message: string };
        if (message.type === 'event') received.push(message.event);
        else if (message.type === 'end') finished = true;
        if (message.type !== 'event') ws.close();
      });
      ws.on('error', () => undefined);
      ws.on('close', () => resolve(finished));
    });
    return { ended, close: () => ws.terminate() };
  });
}

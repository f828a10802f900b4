import { recordEventStream } from '@nodebatch/client/testing';
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

/** Follows one task over SSE, reconnecting with Last-Event-ID after every break. */
export function sseSubscriber(options: SubscriberOptions): ChaosSubscriber {
  const received: StoredEvent[] = [];
  let connections = 0;
  let stopped = false;
  let current: { close(): void } | undefined;
  const done = (async () => {
    for (let attempt = 0; !stopped; attempt++) {
      const url = options.urls[attempt % options.urls.length]!;
      const after = lastSeq(received);
      let recording;
      try {
        recording = await recordEventStream(`${url}/api/v1/tasks/${options.taskId}/events`, {
          headers: {
            authorization: `Bearer ${options.token}`,
            ...(after > 0 && { 'last-event-id': String(after) }),
          },
        });
      } catch {
        // The gateway is restarting, or answered an error status: try the next one.
        await sleep(250);
        continue;
      }
      connections += 1;
      current = recording;
      let seen = 0;
      const take = () => {
        for (; seen < recording.messages.length; seen++) {
          const message = recording.messages[seen]!;
          if (message.data) received.push(JSON.parse(message.data) as StoredEvent);
        }
      };
      await recording.waitFor(() => (take(), false)).catch(() => undefined);
      take();
      if (received.some((event) => isTerminalType(event.type))) return;
      await sleep(100);
    }
    throw new Error(`SSE subscriber of ${options.taskId} stopped before the task ended`);
  })();
  return {
    kind: 'sse',
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

/** Follows one task over the WebSocket, resubscribing with `after` after every break. */
export function wsSubscriber(options: SubscriberOptions): ChaosSubscriber {
  const received: StoredEvent[] = [];
  let connections = 0;
  let stopped = false;
  let socket: WebSocket | undefined;
  const done = (async () => {
    for (let attempt = 0; !stopped; attempt++) {
      const url = options.urls[attempt % options.urls.length]!.replace(/^http/, 'ws');
      const ended = await new Promise<boolean>((resolve) => {
        const ws = new WebSocket(`${url}/api/v1/progress/ws`, {
          headers: { authorization: `Bearer ${options.token}` },
        });
        socket = ws;
        let finished = false;
        ws.on('open', () => {
          connections += 1;
          ws.send(JSON.stringify({ type: 'subscribe', taskId: options.taskId, after: lastSeq(received) }));
        });
        ws.on('message', (data) => {
          const message = JSON.parse(String(data)) as
            | { type: 'event'; event: StoredEvent }
            | { type: 'end'; taskId: string }
            | { type: 'error'; code: string; message: string };
          if (message.type === 'event') received.push(message.event);
          else if (message.type === 'end') {
            finished = true;
            ws.close();
          } else ws.close();
        });
        ws.on('error', () => undefined);
        ws.on('close', () => resolve(finished));
      });
      if (ended) return;
      await sleep(250);
    }
    throw new Error(`WebSocket subscriber of ${options.taskId} stopped before the task ended`);
  })();
  return {
    kind: 'ws',
    taskId: options.taskId,
    received,
    get connections() {
      return connections;
    },
    done,
    stop: () => {
      stopped = true;
      socket?.terminate();
    },
  };
}

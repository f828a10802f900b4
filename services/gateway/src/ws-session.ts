import { isTerminalType } from '@nodebatch/progress';
import type { StoredEvent } from '@nodebatch/progress';
import type { Logger } from 'pino';
import type { Observable, Subscription } from 'rxjs';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { Principal } from './auth.js';
import { BoundedWriter } from './bounded-writer.js';
import type { Corkable } from './bounded-writer.js';
import type { DrainableTarget } from './bounded-writer.js';
import { GatewayError } from './errors.js';
import type { GatewayMetrics } from './metrics.js';

const taskId = z.string().min(1).max(200);

/** Largest seq: seqs are PostgreSQL integers. */
export const MAX_SEQ = 2 ** 31 - 1;

/** Messages a client may send on /api/v1/progress/ws. */
export const ClientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('subscribe'), taskId, after: z.number().int().min(0).max(MAX_SEQ).optional() }),
  z.object({ type: z.literal('unsubscribe'), taskId }),
]);
export type ClientMessage = z.infer<typeof ClientMessageSchema>;

/** Messages the gateway sends. `end` follows a task's terminal event. */
export type ServerMessage =
  | { type: 'event'; event: StoredEvent }
  | { type: 'error'; code: string; message: string; taskId?: string }
  | { type: 'end'; taskId: string };

/**
 * Event messages already serialized, by event: every subscriber of a task
 * gets the same event object from the shared feed, so it is turned into JSON
 * once per gateway rather than once per client (as for SSE).
 */
const eventMessages = new WeakMap<StoredEvent, string>();

function eventMessage(event: StoredEvent): string {
  let text = eventMessages.get(event);
  if (text === undefined) {
    text = JSON.stringify({ type: 'event', event } satisfies ServerMessage);
    eventMessages.set(event, text);
  }
  return text;
}

/** Options of a WebSocket progress session. */
export interface WebSocketSessionOptions {
  /** Bytes held for a client whose connection wants to drain before it is disconnected. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Tasks one connection may follow at once. Default 100. */
  maxSubscriptions?: number;
  /**
   * Milliseconds between pings; a peer that has not answered the previous
   * ping by the next one is dropped (a half-open TCP connection would
   * otherwise hold its subscriptions forever). Default 30000.
   */
  pingIntervalMs?: number;
}

export const WS_DEFAULTS = {
  maxBufferedBytes: 1024 * 1024,
  maxSubscriptions: 100,
  pingIntervalMs: 30_000,
} as const;

export interface WebSocketSessionParams {
  socket: WebSocket;
  /**
   * The TCP connection under `socket`: its 'drain' says the client keeps up,
   * and the frames of one turn leave it corked, in one write.
   */
  connection: DrainableTarget & Corkable;
  principal: Principal;
  /** Rejects (TaskNotFoundError) when the principal may not see the task. */
  authorize(taskId: string, principal: Principal): Promise<void>;
  events$(taskId: string, after: number | undefined): Observable<StoredEvent>;
  /** Per-user limit on subscribe messages: seconds to wait when over it, else 0. Default: none. */
  takeSubscribe?(userId: string): number;
  options: Required<WebSocketSessionOptions>;
  metrics: GatewayMetrics;
  logger: Logger;
}

interface SubscriptionEntry {
  subscription?: Subscription;
  cancelled: boolean;
  /** Counted in the active-streams gauge. */
  open: boolean;
}

/**
 * One client connection: any number of task subscriptions, each delivering
 * the same events as the SSE stream. Returns a function that closes the session.
 */
export function runWebSocketSession(params: WebSocketSessionParams): () => void {
  const { socket, principal, options, metrics, logger } = params;
  // A subscription is registered before it is authorised so an unsubscribe
  // that overtakes the authorisation still wins.
  const subscriptions = new Map<string, SubscriptionEntry>();
  let closed = false;

  const writer = new BoundedWriter({
    target: params.connection,
    send: (text) => socket.send(text),
    maxQueuedBytes: options.maxBufferedBytes,
    cork: params.connection,
    onOverflow: (queuedBytes) => {
      metrics.slowClientDisconnected('ws');
      logger.warn(
        { queuedBytes, maxBufferedBytes: options.maxBufferedBytes },
        'disconnecting a slow WebSocket client: its send buffer is full (it can resubscribe with after)',
      );
      // close() would wait for the peer's close frame, which a stalled client never reads.
      socket.terminate();
      shutdown();
    },
  });
  const sendText = (text: string): boolean => {
    if (closed || socket.readyState !== socket.OPEN) return false;
    return writer.write(text);
  };
  const send = (message: ServerMessage): boolean => sendText(JSON.stringify(message));

  const stop = (id: string): void => {
    const entry = subscriptions.get(id);
    if (!entry) return;
    subscriptions.delete(id);
    entry.cancelled = true;
    entry.subscription?.unsubscribe();
    if (entry.open) metrics.streamClosed('ws');
  };

  const subscribe = async (id: string, after: number | undefined): Promise<void> => {
    const wait = params.takeSubscribe?.(principal.userId) ?? 0;
    if (wait > 0) {
      send({
        type: 'error',
        code: 'RATE_LIMITED',
        message: `too many subscribe messages (LIMIT_SUBSCRIBES_PER_MINUTE); retry in ${wait} s`,
        taskId: id,
      });
      return;
    }
    stop(id);
    if (subscriptions.size >= options.maxSubscriptions) {
      send({
        type: 'error',
        code: 'TOO_MANY_SUBSCRIPTIONS',
        message: `at most ${options.maxSubscriptions} tasks per connection`,
        taskId: id,
      });
      return;
    }
    const entry: SubscriptionEntry = { cancelled: false, open: false };
    subscriptions.set(id, entry);
    try {
      await params.authorize(id, principal);
    } catch (err) {
      if (subscriptions.get(id) === entry) subscriptions.delete(id);
      const known = err instanceof GatewayError ? err : undefined;
      if (!known) logger.error({ err, taskId: id }, 'could not authorise a WebSocket subscription');
      send({
        type: 'error',
        code: known ? known.code : 'INTERNAL',
        message: known ? known.message : 'internal error',
        taskId: id,
      });
      return;
    }
    if (entry.cancelled || closed) return;
    metrics.streamOpened('ws');
    entry.open = true;
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      send({ type: 'end', taskId: id });
      stop(id);
    };
    entry.subscription = params.events$(id, after).subscribe({
      next(event) {
        if (sendText(eventMessage(event))) metrics.delivered('ws', event);
        if (isTerminalType(event.type)) finish();
      },
      error(err: unknown) {
        logger.error({ err, taskId: id }, 'progress stream failed on a WebSocket subscription');
        send({
          type: 'error',
          code: 'STREAM_FAILED',
          message: 'progress stream failed; resubscribe',
          taskId: id,
        });
        stop(id);
      },
      complete: finish,
    });
    if (ended) entry.subscription.unsubscribe();
  };

  let alive = true;
  socket.on('pong', () => (alive = true));
  const pinger = setInterval(() => {
    if (!alive) {
      logger.info('dropping a WebSocket peer that did not answer a ping');
      socket.terminate();
      shutdown();
      return;
    }
    alive = false;
    socket.ping();
  }, options.pingIntervalMs);
  pinger.unref();

  const shutdown = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(pinger);
    for (const id of [...subscriptions.keys()]) stop(id);
  };

  socket.on('message', (data, isBinary) => {
    let raw: unknown;
    try {
      raw = JSON.parse(isBinary ? '' : data.toString());
    } catch {
      send({ type: 'error', code: 'INVALID_MESSAGE', message: 'messages must be JSON text' });
      return;
    }
    const parsed = ClientMessageSchema.safeParse(raw);
    if (!parsed.success) {
      send({ type: 'error', code: 'INVALID_MESSAGE', message: z.prettifyError(parsed.error) });
      return;
    }
    const message = parsed.data;
    if (message.type === 'subscribe') void subscribe(message.taskId, message.after);
    else stop(message.taskId);
  });
  socket.on('close', shutdown);
  socket.on('error', (err) => {
    logger.debug({ err }, 'WebSocket error');
    shutdown();
  });

  return () => {
    shutdown();
    socket.close(1001, 'gateway shutting down');
  };
}

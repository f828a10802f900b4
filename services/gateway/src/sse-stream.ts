import type { ServerResponse } from 'node:http';
import { isTerminalType } from '@nodebatch/progress';
import type { StoredEvent } from '@nodebatch/progress';
import type { Logger } from 'pino';
import { Subscription } from 'rxjs';
import type { Observable } from 'rxjs';
import { BoundedWriter } from './bounded-writer.js';
import type { GatewayMetrics } from './metrics.js';

/** Options of the SSE progress stream. */
export interface SseStreamOptions {
  /** Milliseconds between comment lines that keep proxies from closing an idle stream. Default 15000. */
  heartbeatMs?: number;
  /**
   * Bytes held for a client whose connection wants to drain (beyond the
   * socket's own buffers) before it is disconnected; it resumes with
   * Last-Event-ID. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /** Reconnection delay sent to EventSource clients (`retry:`), in ms. Default 1000. */
  retryMs?: number;
}

export const SSE_DEFAULTS = { heartbeatMs: 15_000, maxBufferedBytes: 1024 * 1024, retryMs: 1000 } as const;

/** How long an ended stream may take to reach a client before its connection is dropped. */
const END_LINGER_MS = 60_000;

/**
 * Messages already formatted, by event. Every subscriber of a task gets the
 * same event objects from the shared feed, so an event is serialized once
 * per gateway rather than once per client (it was the largest cost per
 * delivered event with many subscribers).
 */
const formatted = new WeakMap<StoredEvent, string>();

/** One event as an SSE message: `id:` is the seq so that Last-Event-ID resumes exactly after it. */
export function formatSseEvent(event: StoredEvent): string {
  let message = formatted.get(event);
  if (message === undefined) {
    message = `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
    formatted.set(event, message);
  }
  return message;
}

export interface SseStreamParams {
  response: ServerResponse;
  events$: Observable<StoredEvent>;
  options: Required<SseStreamOptions>;
  metrics: GatewayMetrics;
  logger: Logger;
}

/** What the gateway keeps of an open stream: a way to end it on shutdown. */
export interface OpenStream {
  end(): void;
}

/**
 * Writes a task's events to an already authorised response until the
 * terminal event, the client leaving, or the client falling behind.
 *
 * Observables do not wait for slow readers, so events wait in a bounded
 * queue while the response drains: once more than `maxBufferedBytes` wait,
 * the connection is dropped instead of letting memory grow (the client
 * resumes with Last-Event-ID and loses nothing: delivery is from the log).
 */
export function streamEventsOverSse(
  params: SseStreamParams,
  onClosed: (stream: OpenStream) => void,
): OpenStream {
  const { response, options, metrics, logger } = params;
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // nginx buffers responses unless told not to, which would hold events back.
    'x-accel-buffering': 'no',
  });
  response.write(`retry: ${options.retryMs}\n: stream open\n\n`);
  metrics.streamOpened('sse');

  let closed = false;
  const handle: OpenStream = { end: () => close('end') };
  // Created first so that close() can run during a synchronous first emission.
  const subscription = new Subscription();
  const writer = new BoundedWriter({
    target: response,
    send: (chunk) => response.write(chunk),
    maxQueuedBytes: options.maxBufferedBytes,
    coalesce: true,
    onOverflow: (queuedBytes) => {
      metrics.slowClientDisconnected('sse');
      logger.warn(
        { queuedBytes, maxBufferedBytes: options.maxBufferedBytes },
        'disconnecting a slow SSE client: its send buffer is full (it can resume with Last-Event-ID)',
      );
      close('destroy');
    },
  });
  const heartbeat = setInterval(() => {
    if (!writer.backedUp) writer.write(': heartbeat\n\n');
  }, options.heartbeatMs);
  heartbeat.unref();

  const close = (how: 'end' | 'destroy') => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    subscription.unsubscribe();
    metrics.streamClosed('sse');
    if (how === 'end') {
      writer.flushAll();
      response.end();
      // A client that stopped reading would keep the connection (and what is
      // still queued for it) forever.
      const linger = setTimeout(() => response.destroy(), END_LINGER_MS);
      linger.unref();
      response.once('close', () => clearTimeout(linger));
    } else {
      writer.discard();
      response.destroy();
    }
    onClosed(handle);
  };

  response.on('close', () => close('destroy'));

  subscription.add(
    params.events$.subscribe({
      next(event) {
        if (closed) return;
        if (writer.write(formatSseEvent(event))) metrics.delivered('sse', event);
        if (isTerminalType(event.type)) close('end');
      },
      error(err: unknown) {
        logger.error({ err }, 'progress stream failed; closing the SSE response so the client resumes');
        close('destroy');
      },
      complete() {
        close('end');
      },
    }),
  );

  return handle;
}

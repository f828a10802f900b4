import { StoredEventSchema, describeCauses, isTerminalType, type StoredEvent } from '@nodebatch/progress';
import { Observable, type Subscriber } from 'rxjs';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import {
  ApiError,
  InvalidResponseError,
  RateLimitedError,
  ServerError,
  UnauthenticatedError,
  WatchGaveUpError,
  type WatchProgress,
} from './errors.js';
import { openEventStream } from './event-stream.js';
import { authorizationHeader, type TokenSource } from './token-source.js';

/** How `watchTask` resumes. Every field has a default. */
export interface WatchOptions extends BackoffOptions {
  /**
   * How long it keeps trying to reach a gateway without receiving anything
   * before it fails with WatchGaveUpError, ms. Default 120000 (two minutes,
   * longer than a gateway's rolling restart).
   */
  giveUpAfterMs?: number;
  /**
   * A connection on which nothing arrived for this long is taken for dead and
   * replaced, ms. The gateway sends a heartbeat every 15 s. Default 45000.
   */
  idleTimeoutMs?: number;
  /** Clock, injectable for tests. Default Date.now. */
  now?: () => number;
}

export const WATCH_DEFAULTS = { giveUpAfterMs: 120_000, idleTimeoutMs: 45_000 } as const;

export interface WatchTaskOptions {
  /** Deliver the events after this seq only (a watch resumed by its caller). Default 0: every event. */
  after?: number;
}

/** What a watch needs of its client. */
export interface WatchContext {
  readonly urls: readonly string[];
  readonly tokens: TokenSource;
  readonly fetch: typeof fetch | undefined;
  readonly options: WatchOptions;
  /** The gateway to try first (the one that answered last), and a way to remember one that did. */
  preferredUrl(): number;
  answered(index: number): void;
}

/** The stream ended or broke before the terminal event: a reason to resume, not to fail. */
class StreamInterruptedError extends Error {
  override readonly name = 'StreamInterruptedError';
}

/**
 * A task's events from the gateways' SSE endpoint, each once and in seq order,
 * completing after the terminal event. It resumes after a dropped connection,
 * a gateway restart or a gateway gone for good, with Last-Event-ID, on the same
 * gateway first and then on the next configured one, with backoff and jitter.
 * It fails on what retrying cannot fix (404, 403, 410, an invalid event, a 401
 * after one token refresh) and after `giveUpAfterMs` without an answer.
 */
export function watchTaskEvents(
  context: WatchContext,
  taskId: string,
  options: WatchTaskOptions = {},
): Observable<StoredEvent> {
  return new Observable<StoredEvent>((subscriber) => {
    const abort = new AbortController();
    runWatch(context, taskId, options.after ?? 0, subscriber, abort.signal).catch((error: unknown) =>
      subscriber.error(error),
    );
    return () => abort.abort();
  });
}

async function runWatch(
  context: WatchContext,
  taskId: string,
  after: number,
  subscriber: Subscriber<StoredEvent>,
  signal: AbortSignal,
): Promise<void> {
  const { urls, tokens, options } = context;
  const now = options.now ?? Date.now;
  const giveUpAfterMs = options.giveUpAfterMs ?? WATCH_DEFAULTS.giveUpAfterMs;
  const idleTimeoutMs = options.idleTimeoutMs ?? WATCH_DEFAULTS.idleTimeoutMs;
  const path = `/api/v1/tasks/${encodeURIComponent(taskId)}/events`;
  const progress: WatchProgress = { taskId, lastSeq: after, lastEvent: null };
  let urlIndex = context.preferredUrl();
  /** Attempts since something last arrived; their first failure's time. */
  let attempts = 0;
  let failingSince: number | undefined;
  let refreshedToken = false;

  while (!signal.aborted) {
    const connection = new AbortController();
    const stop = () => connection.abort();
    signal.addEventListener('abort', stop, { once: true });
    let received = false;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const armIdleTimer = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () =>
          connection.abort(
            new StreamInterruptedError(
              `nothing arrived for ${idleTimeoutMs} ms after seq ${progress.lastSeq}`,
            ),
          ),
        idleTimeoutMs,
      );
    };
    /** Anything arriving (an event, a heartbeat) proves the gateway is there: the give-up clock restarts. */
    const touch = () => {
      received = true;
      attempts = 0;
      failingSince = undefined;
      armIdleTimer();
    };
    let token: string | undefined;
    let failure: unknown;
    try {
      token = await tokens.token();
      const stream = await openEventStream(new URL(path, urls[urlIndex]), {
        headers: { ...authorizationHeader(token), 'last-event-id': String(progress.lastSeq) },
        signal: connection.signal,
        onComment: touch,
        ...(context.fetch ? { fetch: context.fetch } : {}),
      });
      context.answered(urlIndex);
      refreshedToken = false;
      armIdleTimer();
      for await (const message of stream.messages()) {
        touch();
        // Messages without an id are the stream's own (an `end` marker), not events.
        if (message.id === undefined) continue;
        const event = parseEvent(message.data, taskId, path);
        if (event.seq <= progress.lastSeq) continue;
        if (event.seq !== progress.lastSeq + 1) {
          throw new StreamInterruptedError(`seq ${event.seq} arrived after ${progress.lastSeq}`);
        }
        progress.lastSeq = event.seq;
        progress.lastEvent = { type: event.type, time: event.time };
        subscriber.next(event);
        if (isTerminalType(event.type)) {
          stream.close();
          subscriber.complete();
          return;
        }
        if (signal.aborted) return;
      }
      failure = new StreamInterruptedError(`the gateway ended the stream after seq ${progress.lastSeq}`);
    } catch (error) {
      if (signal.aborted) return;
      failure = connection.signal.reason instanceof StreamInterruptedError ? connection.signal.reason : error;
    } finally {
      clearTimeout(idleTimer);
      signal.removeEventListener('abort', stop);
      connection.abort();
    }

    if (failure instanceof UnauthenticatedError && tokens.refreshable && !refreshedToken) {
      refreshedToken = true;
      await tokens.refresh(token);
      continue;
    }
    if (!retryable(failure)) throw failure;
    failingSince ??= now();
    attempts += 1;
    const triedForMs = now() - failingSince;
    if (triedForMs >= giveUpAfterMs)
      throw new WatchGaveUpError(progress, triedForMs, attempts, urls, failure);
    // A stream that delivered and then broke is resumed on the same gateway
    // first (a dropped connection, a slow client shed); a gateway that did not
    // answer is replaced by the next one.
    if (!received || attempts > 1) urlIndex = (urlIndex + 1) % urls.length;
    const delay = Math.max(
      backoffDelay(attempts, options),
      failure instanceof RateLimitedError ? (failure.retryAfterMs ?? 0) : 0,
    );
    await sleep(Math.min(delay, Math.max(0, giveUpAfterMs - triedForMs)), signal);
  }
}

/** Whether another attempt may succeed where this one failed. */
function retryable(error: unknown): boolean {
  if (error instanceof InvalidResponseError || error instanceof UnauthenticatedError) return false;
  if (error instanceof ServerError || error instanceof RateLimitedError) return true;
  if (error instanceof ApiError) return false;
  return true;
}

function parseEvent(data: string, taskId: string, path: string): StoredEvent {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch (error) {
    throw new InvalidResponseError(`GET ${path}`, `an event that is not JSON: ${describeCauses(error)}`, {
      cause: error,
    });
  }
  const parsed = StoredEventSchema.safeParse(json);
  if (!parsed.success) {
    throw new InvalidResponseError(`GET ${path}`, `an invalid event: ${parsed.error.message}`, {
      cause: parsed.error,
    });
  }
  if (parsed.data.taskId !== taskId) {
    throw new InvalidResponseError(`GET ${path}`, `an event of task ${parsed.data.taskId}`);
  }
  return parsed.data;
}

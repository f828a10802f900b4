import { GatewayUnreachableError, readApiError } from './errors.js';
import { SseParser, type SseMessage } from './sse-parser.js';

export interface OpenEventStreamOptions {
  /** Request headers (Authorization, Last-Event-ID). */
  headers?: Record<string, string>;
  /** Aborting it closes the connection. */
  signal?: AbortSignal;
  /** Called for each comment line (the gateway's heartbeats). */
  onComment?: (comment: string) => void;
  /** The fetch to use. Default: the global one. */
  fetch?: typeof fetch;
}

/** An open text/event-stream response: one connection, no reconnection (see watchTask for that). */
export interface EventStreamConnection {
  readonly status: number;
  readonly headers: Headers;
  /**
   * The messages as they arrive. The iteration ends when the server ends the
   * response and throws when the connection breaks; it can be iterated once.
   */
  messages(): AsyncIterableIterator<SseMessage>;
  /** Closes the connection; a running iteration ends. */
  close(): void;
}

/**
 * Opens one Server-Sent Events connection with fetch and parses it with
 * SseParser. Resolves once the response headers arrived; an error status
 * rejects with the ApiError of that status, no answer with GatewayUnreachableError.
 * Works in Node 20+ and browsers.
 */
export async function openEventStream(
  url: string | URL,
  options: OpenEventStreamOptions = {},
): Promise<EventStreamConnection> {
  const request = `GET ${new URL(url).pathname}`;
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(options.signal?.reason);
  if (options.signal?.aborted) abort.abort(options.signal.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const release = () => options.signal?.removeEventListener('abort', onOuterAbort);
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, {
      headers: { accept: 'text/event-stream', ...options.headers },
      signal: abort.signal,
    });
  } catch (error) {
    release();
    if (abort.signal.aborted) throw error;
    throw new GatewayUnreachableError(new URL(url).origin, request, { cause: error });
  }
  if (!response.ok || !response.body) {
    release();
    throw await readApiError(response, request);
  }
  const body = response.body;
  let iterated = false;
  return {
    status: response.status,
    headers: response.headers,
    close: () => abort.abort(),
    messages() {
      if (iterated) throw new Error('the messages of an event stream can be iterated once');
      iterated = true;
      return readMessages(body, options.onComment, release);
    },
  };
}

async function* readMessages(
  body: ReadableStream<Uint8Array>,
  onComment: ((comment: string) => void) | undefined,
  release: () => void,
): AsyncIterableIterator<SseMessage> {
  const ready: SseMessage[] = [];
  const parser = new SseParser({
    onMessage: (message) => ready.push(message),
    ...(onComment ? { onComment } : {}),
  });
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      while (ready.length > 0) yield ready.shift()!;
    }
  } finally {
    release();
    // Stops the download when the caller breaks out early.
    reader.cancel().catch(() => undefined);
  }
}

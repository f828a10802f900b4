import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';

/** One Server-Sent Events message as the client parsed it. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

export interface SseConnection {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  /** Messages received so far, in order. */
  readonly messages: readonly SseMessage[];
  /** Comment lines (heartbeats) received so far. */
  readonly comments: number;
  /** The `id:` of the last message, what EventSource sends as Last-Event-ID. */
  readonly lastEventId: string | undefined;
  /** Settles when the server ends the response (true) or the connection breaks (false). */
  readonly ended: Promise<boolean>;
  /** Resolves once `predicate` holds for the messages so far; rejects if the stream ends first. */
  waitFor(predicate: (messages: readonly SseMessage[]) => boolean): Promise<void>;
  close(): void;
}

export interface OpenSseOptions {
  headers?: Record<string, string>;
}

/**
 * A small Node client of text/event-stream, for tests and scripts that watch
 * a task the way a browser's EventSource does (without reconnecting by itself).
 * Rejects when the server answers with anything but 200.
 */
export function openSse(url: string, options: OpenSseOptions = {}): Promise<SseConnection> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...options.headers } }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => reject(new SseStatusError(res.statusCode ?? 0, body)));
        return;
      }
      const messages: SseMessage[] = [];
      let comments = 0;
      let lastEventId: string | undefined;
      let buffer = '';
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
      let resolveEnded!: (value: boolean) => void;
      const ended = new Promise<boolean>((r) => (resolveEnded = r));
      const finish = (clean: boolean) => {
        if (finished !== undefined) return;
        finished = clean;
        resolveEnded(clean);
        check();
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let boundary: number;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          let id: string | undefined;
          let event = 'message';
          const data: string[] = [];
          let isMessage = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments++;
            else if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) {
              data.push(line.slice(5).replace(/^ /, ''));
              isMessage = true;
            }
          }
          if (isMessage) {
            messages.push({ id, event, data: data.join('\n') });
            if (id !== undefined) lastEventId = id;
          }
        }
        check();
      });
      res.on('end', () => finish(true));
      res.on('close', () => finish(false));
      res.on('error', () => finish(false));
      resolve({
        status: res.statusCode,
        headers: res.headers,
        messages,
        get comments() {
          return comments;
        },
        get lastEventId() {
          return lastEventId;
        },
        ended,
        waitFor(predicate) {
          return new Promise<void>((done, fail) => {
            waiters.add({ predicate, done: (err) => (err ? fail(err) : done()) });
            check();
          });
        },
        close() {
          req.destroy();
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The gateway answered a stream request with an error status (401, 404, …). */
export class SseStatusError extends Error {
  readonly status: number;
  readonly body: string;

  constructor(status: number, body: string) {
    super(`event stream refused with HTTP ${status}: ${body.slice(0, 300)}`);
    this.name = 'SseStatusError';
    this.status = status;
    this.body = body;
  }
}

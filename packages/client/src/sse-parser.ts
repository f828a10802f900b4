/**
 * The text/event-stream format (WHATWG HTML, "Server-sent events",
 * "Interpreting an event stream"), the part a client needs: lines end with
 * CR, LF or CRLF (a CR may end one chunk and its LF begin the next), a BOM may
 * open the stream, `:` starts a comment, a blank line dispatches the message.
 * Written here rather than taken from a package so that the client depends on
 * nothing but the core and rxjs.
 */

/** One dispatched message. */
export interface SseMessage {
  /** The message's `id:` (for the gateway: the event's seq); undefined when it had none. */
  id: string | undefined;
  /** The message's `event:`; 'message' when it had none, as in EventSource. */
  event: string;
  data: string;
}

export interface SseParserCallbacks {
  onMessage(message: SseMessage): void;
  /** A comment line, without its colon (the gateway's heartbeats). */
  onComment?(comment: string): void;
  /** A `retry:` field, ms. */
  onRetry?(ms: number): void;
}

/** Feeds decoded text in chunks of any size; calls back per message, comment and retry. */
export class SseParser {
  #buffer = '';
  #start = true;
  /** The previous chunk ended with CR: a LF opening this one belongs to it. */
  #pendingCr = false;
  #data: string[] = [];
  #hasData = false;
  #event = '';
  #id: string | undefined;

  readonly #callbacks: SseParserCallbacks;

  constructor(callbacks: SseParserCallbacks) {
    this.#callbacks = callbacks;
  }

  feed(chunk: string): void {
    let text = chunk;
    if (this.#pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.#pendingCr = false;
    if (this.#start && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.#start = false;
    }
    this.#buffer += text;
    let from = 0;
    // The next CR at or after `from`, -1 when the rest has none. Kept across
    // lines: a stream of LF-ended lines (what the gateway sends) would
    // otherwise be scanned to its end for a CR once per line, quadratic in
    // the size of a chunk that carries many events.
    let cr = this.#buffer.indexOf('\r');
    for (;;) {
      if (cr >= 0 && cr < from) cr = this.#buffer.indexOf('\r', from);
      const lf = this.#buffer.indexOf('\n', from);
      if (cr < 0 && lf < 0) break;
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      const line = this.#buffer.slice(from, end);
      if (this.#buffer[end] === '\r') {
        if (end + 1 === this.#buffer.length) {
          // Whether a LF follows is known only with the next chunk.
          this.#pendingCr = true;
          from = end + 1;
        } else {
          from = this.#buffer[end + 1] === '\n' ? end + 2 : end + 1;
        }
      } else {
        from = end + 1;
      }
      this.#line(line);
    }
    this.#buffer = this.#buffer.slice(from);
  }

  #line(line: string): void {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) {
      this.#callbacks.onComment?.(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    switch (field) {
      case 'data':
        this.#data.push(value);
        this.#hasData = true;
        break;
      case 'event':
        this.#event = value;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.#id = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.#callbacks.onRetry?.(Number(value));
        break;
      default:
      // Unknown fields are ignored, as the spec says.
    }
  }

  #dispatch(): void {
    if (this.#hasData) {
      this.#callbacks.onMessage({
        id: this.#id,
        event: this.#event || 'message',
        data: this.#data.join('\n'),
      });
    }
    // The spec keeps the last event id across messages (what Last-Event-ID
    // sends); here `id` is the message's own, so a message without one says so.
    this.#id = undefined;
    this.#data = [];
    this.#hasData = false;
    this.#event = '';
  }
}

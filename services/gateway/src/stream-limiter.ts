import { GatewayBusyError, TooManyRequestsError } from './errors.js';

interface StreamLimiterOptions {
  /** Open streams (SSE responses, WebSocket connections) one user may hold on this gateway. */
  perUser: number;
  /** Open streams on this gateway, all users together. */
  total: number;
  /** Retry-After sent when a limit is reached, seconds. Default 5. */
  retryAfterSeconds?: number;
}

/**
 * Caps on open progress streams. A user at their cap gets 429 (their own
 * streams must close first); a gateway at its total gets 503 (another
 * replica may have room), both with Retry-After.
 */
export class StreamLimiter {
  readonly #options: StreamLimiterOptions;
  readonly #perUser = new Map<string, number>();
  #total = 0;

  constructor(options: StreamLimiterOptions) {
    this.#options = options;
  }

  get total(): number {
    return this.#total;
  }

  /** Takes one stream for `userId`; returns the function that gives it back (idempotent). */
  acquire(userId: string): () => void {
    const retryAfter = this.#options.retryAfterSeconds ?? 5;
    const mine = this.#perUser.get(userId) ?? 0;
    if (mine >= this.#options.perUser) {
      throw new TooManyRequestsError(
        'TOO_MANY_STREAMS',
        `${userId} already has ${mine} open streams on this gateway, the most LIMIT_STREAMS_PER_USER allows; close one first`,
        retryAfter,
      );
    }
    if (this.#total >= this.#options.total) {
      throw new GatewayBusyError(
        'GATEWAY_STREAMS_FULL',
        `this gateway holds ${this.#total} open streams, the most LIMIT_STREAMS_TOTAL allows; retry, possibly on another replica`,
        retryAfter,
      );
    }
    this.#perUser.set(userId, mine + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#perUser.get(userId) ?? 1) - 1;
      if (left === 0) this.#perUser.delete(userId);
      else this.#perUser.set(userId, left);
    };
  }
}

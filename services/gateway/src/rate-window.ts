/**
 * Counts events per key in fixed windows (one minute by default), for limits
 * on messages that are not HTTP requests (WebSocket subscribe), which
 * @fastify/rate-limit does not see. Keys of past windows are dropped as the
 * window turns, so memory follows the users active in one window.
 */
export class RateWindow {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = 0;
  #counts = new Map<string, number>();

  constructor(options: { max: number; windowMs?: number; now?: () => number }) {
    this.#max = options.max;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Counts one for `key`; the seconds until the window turns when over the limit, else 0. */
  take(key: string): number {
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now - ((now - this.#windowStart) % this.#windowMs);
      this.#counts = new Map();
    }
    const count = (this.#counts.get(key) ?? 0) + 1;
    if (count > this.#max) return Math.max(1, Math.ceil((this.#windowStart + this.#windowMs - now) / 1000));
    this.#counts.set(key, count);
    return 0;
  }
}

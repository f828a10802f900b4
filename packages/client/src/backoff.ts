/** How `watchTask` waits between attempts to reach a gateway. */
export interface BackoffOptions {
  /** Delay before the first retry, ms. Default 250. */
  initialDelayMs?: number;
  /** Longest delay between two attempts, ms. Default 5000. */
  maxDelayMs?: number;
  /** A number in [0, 1); injectable so tests can fix the jitter. Default Math.random. */
  random?: () => number;
}

export const BACKOFF_DEFAULTS = { initialDelayMs: 250, maxDelayMs: 5000 } as const;

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half is
 * random, so clients that lost the same gateway at the same moment do not all
 * reconnect to the next one in the same millisecond, and none waits near zero.
 * `attempt` counts from 1.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelayMs ?? BACKOFF_DEFAULTS.initialDelayMs;
  const max = options.maxDelayMs ?? BACKOFF_DEFAULTS.maxDelayMs;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, initial * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** Resolves after `ms`, or at once when `signal` is aborted. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

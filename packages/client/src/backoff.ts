import { backoffDelay as coreBackoffDelay, sleep as coreSleep } from '@nodebatch/progress';

/** How `watchTask` waits between attempts to reach a gateway. */
export interface BackoffOptions {
  /** Delay before the first retry, ms. Default 250. */
  initialDelayMs?: number;
  /** Longest delay between two attempts, ms. Default 5000. */
  maxDelayMs?: number;
  /** A number in [0, 1); injectable so tests can fix the jitter. Default Math.random. */
  random?: () => number;
}

const BACKOFF_DEFAULTS = { initialDelayMs: 250, maxDelayMs: 5000 } as const;

/**
 * The core's exponential backoff with "equal jitter" under the client's option
 * names: clients that lost the same gateway at the same moment do not all
 * reconnect to the next one in the same millisecond, and none waits near zero.
 * `attempt` counts from 1.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  return coreBackoffDelay(
    attempt - 1,
    {
      minDelayMs: options.initialDelayMs ?? BACKOFF_DEFAULTS.initialDelayMs,
      maxDelayMs: options.maxDelayMs ?? BACKOFF_DEFAULTS.maxDelayMs,
    },
    options.random,
  );
}

/** Resolves after `ms`, or at once when `signal` is aborted (the caller then sees the signal). */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  await coreSleep(ms, signal).catch(() => undefined);
}

/** Bounds of an exponential backoff; both transports and the notifier retry with it. */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. Default 200. */
  minDelayMs?: number;
  /** Upper bound of any delay, in ms. Default 10000. */
  maxDelayMs?: number;
}

export const DEFAULT_BACKOFF = { minDelayMs: 200, maxDelayMs: 10_000 } as const;

/**
 * The delay before retry number `attempt` (0 for the first retry): doubles
 * each time up to `maxDelayMs`, then takes a random point in the upper half
 * ("equal jitter") so that replicas that lost the same server do not all
 * reconnect in the same millisecond, while a retry never comes sooner than
 * half the nominal delay.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const min = Math.max(1, options.minDelayMs ?? DEFAULT_BACKOFF.minDelayMs);
  const max = Math.max(min, options.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs);
  // Capping the exponent avoids Infinity after many attempts.
  const nominal = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.round(nominal / 2 + random() * (nominal / 2));
}

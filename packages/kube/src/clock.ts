import { backoffDelay, sleep } from '@nodebatch/progress';

/** Time as the operators see it; tests inject their own to make backoff and latency instant. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep,
};

/**
 * Delay before eviction retry `attempt` (1-based): doubling from `initialMs`,
 * capped at `maxMs`, with up to 20% jitter, which spreads the retries of many
 * nodes blocked by the same PodDisruptionBudget.
 */
export function evictionDelay(
  attempt: number,
  options: { initialMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  return backoffDelay(
    attempt - 1,
    { minDelayMs: options.initialMs, maxDelayMs: options.maxMs, jitter: 0.2 },
    random,
  );
}

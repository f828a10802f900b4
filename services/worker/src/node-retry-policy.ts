import { backoffDelay } from '@nodebatch/progress';

/**
 * How a node operation that failed with a retryable error (5xx, 429 on a
 * patch, a lost connection) is tried again. Non-retryable failures (404, an
 * invalid label) end the node at once.
 */
export interface NodeRetryPolicy {
  /** Attempts per node including the first. Default 3. */
  maxAttempts: number;
  /** Delay before the second attempt; doubled for each further one. Default 500 ms. */
  baseDelayMs: number;
  /** Upper bound of any delay. Default 10000 ms. */
  maxDelayMs: number;
}

export const DEFAULT_NODE_RETRY_POLICY: NodeRetryPolicy = {
  maxAttempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
};

/**
 * The delay after `failedAttempt` (1-based) failed: exponential with up to 20%
 * jitter, so nodes that failed together (an API server restart) do not all
 * retry in the same millisecond.
 */
export function retryDelayMs(
  policy: NodeRetryPolicy,
  failedAttempt: number,
  random: () => number = Math.random,
): number {
  return backoffDelay(
    failedAttempt - 1,
    { minDelayMs: policy.baseDelayMs, maxDelayMs: policy.maxDelayMs, jitter: 0.2 },
    random,
  );
}

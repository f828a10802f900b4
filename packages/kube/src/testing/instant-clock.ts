import type { Clock } from '../clock.js';

/**
 * A clock for tests: sleeping advances virtual time at once (still honouring abort), so backoff
 * and latency cost nothing and deadlines are exact. `sleeps` records each requested delay.
 */
export function instantClock(start = 1_000_000): Clock & { sleeps: number[] } {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      now += ms;
      // Yield so other async work (and abort listeners) can run between sleeps.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (signal?.aborted) throw signal.reason;
    },
  };
}

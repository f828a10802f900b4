/** A pending timer of a {@link Scheduler}. */
export interface ScheduledTask {
  cancel(): void;
}

/**
 * Time as a transport's periodic loop (a poll, a position check, a probe)
 * sees it. Injectable so tests can drive the loop one tick at a time and
 * count the queries of each, instead of sleeping.
 */
export interface Scheduler {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Runs `task` once after `delayMs`. */
  schedule(task: () => void, delayMs: number): ScheduledTask;
}

/** The scheduler of the running process: `setTimeout` and `performance.now()`. */
export const realScheduler: Scheduler = {
  now: () => performance.now(),
  schedule(task, delayMs) {
    const timer = setTimeout(task, delayMs);
    // A periodic loop alone must not keep a process alive that has nothing else to do.
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

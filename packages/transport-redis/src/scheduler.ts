/** A pending timer of a {@link Scheduler}. */
export interface ScheduledTask {
  cancel(): void;
}

/**
 * Time as the position check and the probe see it. Injectable so tests can
 * drive the checks one by one and count their queries, instead of sleeping.
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
    // A position check alone must not keep a process alive that has nothing else to do.
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

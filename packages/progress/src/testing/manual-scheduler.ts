import type { ScheduledTask, Scheduler } from '../scheduler.js';

/**
 * A scheduler driven by the test: a transport loop's next tick runs when the
 * test calls `tick()`, which resolves once that poll has finished (the loop
 * then schedules the next one). Time is real; only the timers are manual.
 */
export class ManualScheduler implements Scheduler {
  #pending: (() => void) | null = null;
  #waiters: (() => void)[] = [];

  now(): number {
    return performance.now();
  }

  schedule(task: () => void, _delayMs: number): ScheduledTask {
    let cancelled = false;
    const entry = () => {
      if (!cancelled) task();
    };
    this.#pending = entry;
    for (const waiter of this.#waiters.splice(0)) waiter();
    return {
      cancel: () => {
        cancelled = true;
        if (this.#pending === entry) this.#pending = null;
      },
    };
  }

  /** Runs the scheduled poll and waits until the loop has scheduled the next one. */
  async tick(): Promise<void> {
    const task = this.#pending;
    if (!task) throw new Error('no poll is scheduled');
    this.#pending = null;
    const next = new Promise<void>((resolve) => this.#waiters.push(resolve));
    task();
    await next;
  }
}

import type { ScheduledTask, Scheduler } from './scheduler.js';

/** Options of {@link probeRoundTrip}. */
export interface ProbeRoundTripOptions {
  /** The transport's scheduler: its clock measures the round trip, its timer bounds it. */
  scheduler: Scheduler;
  /** How long the probe may take, in ms. */
  timeoutMs: number;
  /** Sends the probe and resolves once it came back through the transport; rejects when it could not be sent. */
  send(): Promise<void>;
  /** The error to reject with when the probe did not come back in time, naming where it was sent. */
  timeoutError(): Error;
}

/**
 * The round trip of {@link Transport.probe}, shared by every transport: sends
 * the probe, waits for it to come back, and resolves with the milliseconds it
 * took, or rejects with `timeoutError()` after `timeoutMs` (or with what
 * `send` rejected with). The timer is cancelled either way.
 */
export async function probeRoundTrip(options: ProbeRoundTripOptions): Promise<number> {
  const { scheduler, timeoutMs } = options;
  const startedAt = scheduler.now();
  let timeout: ScheduledTask | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timeout = scheduler.schedule(() => reject(options.timeoutError()), timeoutMs);
      options.send().then(resolve, reject);
    });
  } finally {
    timeout?.cancel();
  }
  return scheduler.now() - startedAt;
}

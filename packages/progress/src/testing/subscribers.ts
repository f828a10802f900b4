import { vi } from 'vitest';
import type { Subscription } from 'rxjs';
import type { StoredEvent } from '../events.js';
import type { ProgressStreams } from '../progress-streams.js';

/** One events$ subscriber and everything it was given. */
export interface Recorder {
  readonly after: number;
  readonly seqs: number[];
  readonly subscription: Subscription;
  /** Resolves when the stream completes; rejects with its error. */
  readonly finished: Promise<void>;
  completed: boolean;
}

export function record(streams: ProgressStreams, taskId: string, after = 0): Recorder {
  const seqs: number[] = [];
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const finished = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Attach a handler now so a rejection the test awaits later is not reported as unhandled.
  finished.catch(() => undefined);
  const recorder: Recorder = {
    after,
    seqs,
    finished,
    completed: false,
    subscription: undefined as unknown as Subscription,
  };
  (recorder as { subscription: Subscription }).subscription = streams.events$(taskId, { after }).subscribe({
    next: (event: StoredEvent) => seqs.push(event.seq),
    complete: () => {
      recorder.completed = true;
      resolve();
    },
    error: reject,
  });
  return recorder;
}

export function range(from: number, to: number): number[] {
  return from > to ? [] : Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Waits until the assertion passes: generous, so a loaded CI machine is not a failure. */
export function eventually<T>(assertion: () => T): Promise<T> {
  return vi.waitFor(assertion, { timeout: 20_000, interval: 2 });
}

import type { StoredEvent } from '../events.js';
import type { EventReader, ReadAllOptions, ReadTaskOptions } from '../store.js';

/**
 * An EventReader in front of a real store that counts and can slow or fail
 * reads, to observe how subscribers use the store: how many reads, how many
 * at once, and what they do when reads fail.
 */
export class InstrumentedReader implements EventReader {
  readonly #inner: EventReader;
  readTaskCalls: { taskId: string; after: number; limit: number | undefined }[] = [];
  latestSeqsCalls = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Awaited before each readTask reaches the store; replace to slow or hold reads. */
  beforeRead: (taskId: string) => Promise<void> = () => Promise.resolve();
  /** Awaited after the store answered, before the caller gets the answer: holds a stale snapshot. */
  afterRead: (taskId: string) => Promise<void> = () => Promise.resolve();
  /** The next this many readTask calls reject with a transient error. */
  failNext = 0;

  constructor(inner: EventReader) {
    this.#inner = inner;
  }

  async readTask(taskId: string, options: ReadTaskOptions = {}): Promise<StoredEvent[]> {
    this.readTaskCalls.push({ taskId, after: options.after ?? 0, limit: options.limit });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.beforeRead(taskId);
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error('connection terminated unexpectedly');
      }
      const events = await this.#inner.readTask(taskId, options);
      await this.afterRead(taskId);
      return events;
    } finally {
      this.inFlight--;
    }
  }

  readAll(options: ReadAllOptions): Promise<StoredEvent[]> {
    return this.#inner.readAll(options);
  }

  latestSeqs(taskIds: readonly string[]): Promise<Map<string, number>> {
    this.latestSeqsCalls++;
    return this.#inner.latestSeqs(taskIds);
  }

  headPosition(): Promise<number> {
    return this.#inner.headPosition();
  }
}

import type { StoredEvent } from '../events.js';
import type { EventReader, ReadAllOptions, ReadAllPage, ReadTaskOptions } from '../store.js';

export type ReaderMethod = 'readTask' | 'readAll' | 'latestSeqs' | 'headPosition';

/**
 * An EventReader in front of a real store that counts and can slow or fail
 * reads, to observe how subscribers and transports use the store: how many
 * queries, how many at once, and what they do when reads fail.
 */
export class InstrumentedReader implements EventReader {
  readonly #inner: EventReader;
  /** Calls per method, counted as they reach this reader; readAllPage counts as readAll (one read by position). */
  readonly calls: Record<ReaderMethod, number> = { readTask: 0, readAll: 0, latestSeqs: 0, headPosition: 0 };
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
    this.calls.readTask++;
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
    this.calls.readAll++;
    return this.#inner.readAll(options);
  }

  readAllPage(options: ReadAllOptions): Promise<ReadAllPage> {
    this.calls.readAll++;
    return this.#inner.readAllPage(options);
  }

  latestSeqs(taskIds: readonly string[]): Promise<Map<string, number>> {
    this.calls.latestSeqs++;
    this.latestSeqsCalls++;
    return this.#inner.latestSeqs(taskIds);
  }

  headPosition(): Promise<number> {
    this.calls.headPosition++;
    return this.#inner.headPosition();
  }
}

/**
 * The real store with a count of the queries made through it, so tests can
 * assert how many queries a poll costs without server-side statistics.
 */
export function countingReader(store: EventReader): {
  reader: EventReader;
  calls: Record<ReaderMethod, number>;
  total(): number;
} {
  const reader = new InstrumentedReader(store);
  const { calls } = reader;
  return {
    reader,
    calls,
    total: () => calls.readTask + calls.readAll + calls.latestSeqs + calls.headPosition,
  };
}

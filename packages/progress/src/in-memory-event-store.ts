import { Subject, type Observable } from 'rxjs';
import { NodebatchError, StaleSequenceError, UnknownTaskError } from './errors.js';
import {
  DEFAULT_MAX_EVENT_BYTES,
  DEFAULT_MAX_TASK_CREATED_BYTES,
  checkIdempotencyKey,
  checkInteger,
  checkLogRules,
  replayedBatch,
  validateEvents,
} from './event-log-rules.js';
import { isTerminalType, type NewEvent, type StoredEvent } from './events.js';
import { applyFence } from './fence.js';
import type {
  AppendOptions,
  AppendTransaction,
  EventStore,
  ReadAllOptions,
  ReadAllPage,
  ReadTaskOptions,
} from './store.js';

/** Options of {@link InMemoryEventStore}. */
export interface InMemoryEventStoreOptions {
  /** Page size of readTask/readAll when no limit is given. Default 1000. */
  pageSize?: number;
  /** Clock for events appended without a time. Default `() => new Date()`. */
  now?: () => Date;
  /** Largest `data` of one event, in bytes of JSON. Default 65536 (64 KiB), as the PostgreSQL store. */
  maxEventBytes?: number;
  /** Largest `data` of a TaskCreated event. Default 1 MiB, as the PostgreSQL store. */
  maxTaskCreatedBytes?: number;
}

/** An append hook asked the in-memory store to run SQL, which it does not have. */
export class InMemoryQueryError extends NodebatchError {
  constructor(text: string) {
    super(
      'IN_MEMORY_QUERY',
      `the in-memory event store cannot run SQL (${JSON.stringify(text.slice(0, 80))}); use a hook that does not query, or the PostgreSQL store`,
    );
  }
}

const inMemoryTransaction: AppendTransaction = {
  query: (text) => Promise.reject(new InMemoryQueryError(text)),
  notify: (channel) => {
    throw new InMemoryQueryError(`NOTIFY ${channel}`);
  },
};

/**
 * An EventStore in process memory, with the rules of the PostgreSQL store:
 * per-task seqs 1, 2, 3 … without gaps, one global position, a task starts
 * with TaskCreated and has at most one terminal event, `expectedSeq`,
 * idempotency keys, fences, and a hook that runs before commit and rolls the
 * append back when it fails.
 * For single-process use, demos and tests; it keeps every event until dropped.
 *
 * Like PostgreSQL, positions are assigned before commit, and an append whose
 * hook is slow commits after later positions: readAll therefore returns only
 * positions below the lowest still-uncommitted one (invariant 4, docs/invariants.md).
 */
export class InMemoryEventStore implements EventStore {
  readonly #pageSize: number;
  readonly #now: () => Date;
  readonly #maxEventBytes: number;
  readonly #maxTaskCreatedBytes: number;
  readonly #tasks = new Map<string, StoredEvent[]>();
  /** Committed events in position order. */
  readonly #log: StoredEvent[] = [];
  /** Positions handed to appends that have not committed or rolled back yet. */
  readonly #uncommitted = new Set<number>();
  /** Each task's batches by idempotency key: the seqs of their first and last events. */
  readonly #batches = new Map<string, Map<string, { first: number; last: number }>>();
  /** The highest TaskStarted attempt of each task, for fenced appends. */
  readonly #attempts = new Map<string, number>();
  /** Tail of each task's append queue: appends to one task run one at a time. */
  readonly #taskQueues = new Map<string, Promise<unknown>>();
  readonly #committed = new Subject<readonly StoredEvent[]>();
  #nextPosition = 1;

  /** Each committed append's events, after commit, in commit order. */
  readonly committed$: Observable<readonly StoredEvent[]> = this.#committed.asObservable();

  constructor(options: InMemoryEventStoreOptions = {}) {
    this.#pageSize = options.pageSize ?? 1000;
    this.#now = options.now ?? (() => new Date());
    this.#maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.#maxTaskCreatedBytes = options.maxTaskCreatedBytes ?? DEFAULT_MAX_TASK_CREATED_BYTES;
  }

  append(taskId: string, events: readonly NewEvent[], options: AppendOptions = {}): Promise<StoredEvent[]> {
    const previous = this.#taskQueues.get(taskId) ?? Promise.resolve();
    const result = previous.then(
      () => this.#appendNow(taskId, events, options),
      () => this.#appendNow(taskId, events, options),
    );
    const tail = result.catch(() => undefined);
    this.#taskQueues.set(taskId, tail);
    void tail.then(() => {
      if (this.#taskQueues.get(taskId) === tail) this.#taskQueues.delete(taskId);
    });
    return result;
  }

  async #appendNow(
    taskId: string,
    events: readonly NewEvent[],
    options: AppendOptions,
  ): Promise<StoredEvent[]> {
    // The PostgreSQL store's order of checks, so both fail the same way on the same input.
    const validated = validateEvents(taskId, events, this.#maxEventBytes, this.#maxTaskCreatedBytes);
    const key = checkIdempotencyKey(taskId, options.idempotencyKey);
    if (validated.length === 0) return [];
    const existing = this.#tasks.get(taskId) ?? [];
    const replay = key === undefined ? undefined : this.#batches.get(taskId)?.get(key);
    if (key !== undefined && replay !== undefined) {
      return replayedBatch(taskId, key, existing.slice(replay.first - 1, replay.last), validated);
    }
    const lastSeq = existing.length;
    if (options.expectedSeq !== undefined && options.expectedSeq !== lastSeq) {
      throw new StaleSequenceError(taskId, options.expectedSeq, lastSeq);
    }
    const last = existing.at(-1);
    checkLogRules(
      taskId,
      { lastSeq, endedWith: last !== undefined && isTerminalType(last.type) ? last.type : null },
      validated,
    );
    const attempt = applyFence(
      taskId,
      this.#attempts.get(taskId) ?? 0,
      options.fence,
      validated as NewEvent[],
    );
    const time = this.#now().toISOString();
    const stored = validated.map(
      (event, index) =>
        deepFreeze({
          taskId,
          seq: lastSeq + index + 1,
          position: this.#nextPosition++,
          type: event.type,
          time: event.time ?? time,
          data: event.data,
        }) as StoredEvent,
    );
    for (const event of stored) this.#uncommitted.add(event.position);
    try {
      if (options.hook) await options.hook(inMemoryTransaction, stored);
    } catch (error) {
      for (const event of stored) this.#uncommitted.delete(event.position);
      throw error;
    }
    // Commit: the task's events become visible at once, in the log in position order.
    for (const event of stored) this.#uncommitted.delete(event.position);
    if (existing.length === 0) this.#tasks.set(taskId, existing);
    this.#attempts.set(taskId, attempt);
    if (key !== undefined) {
      const batches = this.#batches.get(taskId) ?? new Map<string, { first: number; last: number }>();
      batches.set(key, { first: lastSeq + 1, last: lastSeq + stored.length });
      this.#batches.set(taskId, batches);
    }
    for (const event of stored) existing.push(event);
    insertByPosition(this.#log, stored);
    this.#committed.next(stored);
    return [...stored];
  }

  async readTask(taskId: string, options: ReadTaskOptions = {}): Promise<StoredEvent[]> {
    const events = this.#tasks.get(taskId);
    if (events === undefined) throw new UnknownTaskError(taskId);
    const after = checkInteger('after', options.after ?? 0, 0);
    const limit = Math.min(checkInteger('limit', options.limit ?? this.#pageSize, 1), this.#pageSize);
    // seq n is at index n - 1.
    return events.slice(after, after + limit);
  }

  async readAll(options: ReadAllOptions): Promise<StoredEvent[]> {
    return (await this.readAllPage(options)).events;
  }

  async readAllPage(options: ReadAllOptions): Promise<ReadAllPage> {
    checkInteger('afterPosition', options.afterPosition, 0);
    const limit = Math.min(checkInteger('limit', options.limit ?? this.#pageSize, 1), this.#pageSize);
    // The next `limit` committed events, as the PostgreSQL store reads them;
    // those at or above the horizon are held back.
    const start = firstIndexAfter(this.#log, options.afterPosition);
    const window = this.#log.slice(start, start + limit);
    const readable = firstIndexAfter(window, this.#visibleHorizon() - 1);
    return {
      events: window.slice(0, readable),
      heldBackTo: readable < window.length ? window.at(-1)!.position : null,
    };
  }

  async latestSeqs(taskIds: readonly string[]): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    for (const taskId of taskIds) {
      const length = this.#tasks.get(taskId)?.length ?? 0;
      if (length > 0) result.set(taskId, length);
    }
    return result;
  }

  async headPosition(): Promise<number> {
    const horizon = this.#visibleHorizon();
    // The last committed position below the horizon: what readAll has already made final.
    const index = firstIndexAfter(this.#log, horizon - 1) - 1;
    return index >= 0 ? this.#log[index]!.position : 0;
  }

  /** Positions below this are final: no uncommitted append holds one. */
  #visibleHorizon(): number {
    let horizon = Number.POSITIVE_INFINITY;
    for (const position of this.#uncommitted) horizon = Math.min(horizon, position);
    return horizon;
  }
}

/** Index of the first event with a position greater than `position` (binary search). */
function firstIndexAfter(log: readonly StoredEvent[], position: number): number {
  let low = 0;
  let high = log.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (log[mid]!.position <= position) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Appends committing out of position order land where their positions belong. */
function insertByPosition(log: StoredEvent[], events: readonly StoredEvent[]): void {
  const first = events[0];
  if (first === undefined) return;
  log.splice(firstIndexAfter(log, first.position), 0, ...events);
}

/** Stored events are shared by every reader; freezing stops one from changing what others see. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

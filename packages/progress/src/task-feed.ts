import type { Logger } from 'pino';
import type { Subscriber } from 'rxjs';
import { isTerminalType, type StoredEvent } from './events.js';
import type { EventReader } from './store.js';
import type { Hint } from './transport.js';

/** Settings of a TaskFeed, resolved from ProgressStreamsOptions. */
export interface TaskFeedSettings {
  store: EventReader;
  logger: Logger;
  readPageSize: number;
  maxConcurrentReads: number;
  readRetries: number;
  readRetryDelayMs: number;
}

/** One subscriber's place in the task: the seq of the last event it was given. */
export interface TaskCursor {
  seq: number;
  readonly subscriber: Subscriber<StoredEvent>;
  closed: boolean;
}

interface StoreRead {
  readonly after: number;
  readonly limit: number;
  /** The feed's epoch when the read was issued: a read reaching the head verifies that epoch. */
  readonly epoch: number;
  readonly tick: number;
}

const MAX_RETRY_DELAY_MS = 5_000;

/**
 * The live pipeline of one task in one process, shared by all its subscribers
 * (ProgressStreams keeps one per watched task). Every subscriber has its own
 * cursor; the feed hands each the event right after its cursor, from a cache
 * filled by inline hint events and by store reads, so delivery is exactly
 * once and in seq order whatever order hints come in (invariant 3, docs/invariants.md).
 *
 * What the feed knows:
 * - `knownHead`: events 1..knownHead exist (announced by a hint, or read).
 * - `verifiedEpoch`: a store read issued in that epoch reached the head. The
 *   epoch starts after watch() and is bumped by every resync, so after a
 *   verified read every later event is announced by a hint, or by a resync.
 * Store reads are coalesced: one read serves every subscriber that needs
 * the seqs it covers, and at most `maxConcurrentReads` run at a time.
 */
export class TaskFeed {
  readonly taskId: string;
  readonly #settings: TaskFeedSettings;
  readonly #logger: Logger;
  readonly #cursors = new Set<TaskCursor>();
  readonly #cache = new Map<number, StoredEvent>();
  readonly #reads = new Set<StoreRead>();
  #evictedUpTo = 0;
  #knownHead = 0;
  /** Highest seq of an event the feed has held: whether the event at knownHead is terminal is known only when it reached it. */
  #highestSeen = 0;
  #terminalSeq: number | null = null;
  #epoch = 1;
  #verifiedEpoch = 0;
  #tick = 0;
  /** #tick when knownHead last went up (see #contradicted). */
  #headRaiseTick = 0;
  #failures = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #pumping = false;
  #pumpAgain = false;
  #disposed = false;

  constructor(taskId: string, settings: TaskFeedSettings) {
    this.taskId = taskId;
    this.#settings = settings;
    this.#logger = settings.logger;
  }

  get subscriberCount(): number {
    return this.#cursors.size;
  }

  /** Adds a subscriber that has seen every event up to `after`; it gets the rest. */
  add(subscriber: Subscriber<StoredEvent>, after: number): TaskCursor {
    const cursor: TaskCursor = { seq: after, subscriber, closed: false };
    this.#cursors.add(cursor);
    this.#evictedUpTo = Math.min(this.#evictedUpTo, after);
    this.#pump();
    return cursor;
  }

  remove(cursor: TaskCursor): void {
    cursor.closed = true;
    this.#cursors.delete(cursor);
  }

  onHint(hint: Hint): void {
    if (this.#disposed) return;
    const cap = this.#terminalSeq ?? Number.POSITIVE_INFINITY;
    if (hint.seq > this.#knownHead && hint.seq <= cap) this.#raiseHead(hint.seq);
    if (hint.events) this.#addEvents(hint.events);
    this.#pump();
  }

  /** Hints may have been missed: the next read that reaches the head is needed again. */
  onResync(): void {
    if (this.#disposed) return;
    this.#epoch++;
    this.#scheduleReads();
  }

  /** Stops all work; reads still in flight are ignored when they land. */
  dispose(): void {
    this.#disposed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#cache.clear();
  }

  /** Sends the given error to every subscriber (the store said the task is unknown, or reads kept failing). */
  fail(error: unknown): void {
    for (const cursor of [...this.#cursors]) {
      this.remove(cursor);
      cursor.subscriber.error(error);
    }
  }

  #addEvents(events: readonly StoredEvent[]): void {
    const lowest = this.#lowestCursor();
    for (const event of events) {
      if (event.taskId !== this.taskId) continue;
      if (this.#terminalSeq !== null && event.seq > this.#terminalSeq) continue;
      if (isTerminalType(event.type)) {
        this.#terminalSeq = event.seq;
        // Nothing exists after the terminal event (the store refuses it).
        for (const seq of this.#cache.keys()) if (seq > event.seq) this.#cache.delete(seq);
        if (this.#knownHead > event.seq) this.#knownHead = event.seq;
      }
      if (event.seq > this.#knownHead) this.#raiseHead(event.seq);
      if (event.seq > this.#highestSeen) this.#highestSeen = event.seq;
      if (event.seq > lowest) this.#cache.set(event.seq, event);
    }
  }

  #raiseHead(seq: number): void {
    this.#knownHead = seq;
    this.#headRaiseTick = this.#tick;
  }

  #lowestCursor(): number {
    let lowest = Number.POSITIVE_INFINITY;
    for (const cursor of this.#cursors) lowest = Math.min(lowest, cursor.seq);
    return lowest;
  }

  /**
   * Delivers what each cursor can take. Re-entrant calls (a subscriber that
   * appends, subscribes or unsubscribes while handling an event, with hints
   * delivered synchronously) only ask for one more round.
   */
  #pump(): void {
    if (this.#disposed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        for (const cursor of [...this.#cursors]) this.#deliver(cursor);
      } while (this.#pumpAgain && !this.#disposed);
    } finally {
      this.#pumping = false;
    }
    this.#evict();
    this.#scheduleReads();
  }

  #deliver(cursor: TaskCursor): void {
    while (!cursor.closed && !this.#disposed) {
      if (this.#terminalSeq !== null && cursor.seq >= this.#terminalSeq) {
        this.remove(cursor);
        cursor.subscriber.complete();
        return;
      }
      const next = this.#cache.get(cursor.seq + 1);
      if (next === undefined) return;
      cursor.seq = next.seq;
      cursor.subscriber.next(next);
    }
  }

  /** Drops cached events every subscriber has passed. */
  #evict(): void {
    const lowest = this.#lowestCursor();
    if (lowest === Number.POSITIVE_INFINITY) {
      this.#cache.clear();
      return;
    }
    if (lowest <= this.#evictedUpTo) return;
    if (lowest - this.#evictedUpTo > this.#cache.size) {
      for (const seq of this.#cache.keys()) if (seq <= lowest) this.#cache.delete(seq);
    } else {
      for (let seq = this.#evictedUpTo + 1; seq <= lowest; seq++) this.#cache.delete(seq);
    }
    this.#evictedUpTo = lowest;
  }

  /** The first seq each waiting cursor needs from the store, ascending. */
  #neededSeqs(): number[] {
    const needs = new Set<number>();
    let lowestWaiting = Number.POSITIVE_INFINITY;
    for (const cursor of this.#cursors) {
      if (cursor.closed) continue;
      const next = cursor.seq + 1;
      if (this.#cache.has(next)) continue;
      lowestWaiting = Math.min(lowestWaiting, cursor.seq);
      if (next <= this.#knownHead) {
        needs.add(next);
      } else if (
        this.#terminalSeq === null &&
        this.#verifiedEpoch === this.#epoch &&
        this.#knownHead > 0 &&
        this.#highestSeen < this.#knownHead
      ) {
        // The cursor is at or past the head: only the head event says whether the task is over.
        needs.add(this.#knownHead);
      }
    }
    if (lowestWaiting === Number.POSITIVE_INFINITY) return [];
    if (this.#verifiedEpoch < this.#epoch && this.#terminalSeq === null) {
      const currentEpochReading = [...this.#reads].some((read) => read.epoch === this.#epoch);
      if (!currentEpochReading) {
        // Discover the head: from the head we know, or from the lowest waiting cursor
        // when that is further (events below every cursor are of no use).
        // Reading from just below that cursor shows whether its event ended the task.
        needs.add(Math.max(this.#knownHead, lowestWaiting - 1) + 1);
      }
    }
    return [...needs].sort((a, b) => a - b);
  }

  #scheduleReads(): void {
    if (this.#disposed || this.#retryTimer !== null) return;
    const pageSize = this.#settings.readPageSize;
    for (const seq of this.#neededSeqs()) {
      if (this.#reads.size >= this.#settings.maxConcurrentReads) return;
      // A discovery need (beyond knownHead) is served only by a read of the current epoch.
      const discovery = seq > this.#knownHead;
      const covered = [...this.#reads].some(
        (read) =>
          read.after < seq && seq <= read.after + read.limit && (!discovery || read.epoch === this.#epoch),
      );
      if (covered) continue;
      this.#startRead({ after: seq - 1, limit: pageSize, epoch: this.#epoch, tick: ++this.#tick });
    }
  }

  #startRead(read: StoreRead): void {
    this.#reads.add(read);
    this.#runRead(read).then(
      (result) => this.#onReadResult(read, result.events, result.head),
      (error: unknown) => this.#onReadError(read, error),
    );
  }

  /** Reads a page; `head` is the task's last seq at read time when the page reached it, else null. */
  async #runRead(read: StoreRead): Promise<{ events: StoredEvent[]; head: number | null }> {
    const { store } = this.#settings;
    const events = await store.readTask(this.taskId, { after: read.after, limit: read.limit });
    if (events.length >= read.limit) return { events, head: null };
    const last = events.at(-1);
    if (last !== undefined) return { events, head: last.seq };
    if (read.after === 0) return { events, head: 0 };
    // An empty page only says the head is at or below `after`: ask for it.
    const latest = await store.latestSeqs([this.taskId]);
    return { events, head: latest.get(this.taskId) ?? 0 };
  }

  #onReadResult(read: StoreRead, events: StoredEvent[], head: number | null): void {
    this.#reads.delete(read);
    if (this.#disposed) return;
    this.#failures = 0;
    this.#addEvents(events);
    if (head !== null) {
      if (head < this.#knownHead && this.#headRaiseTick < read.tick) this.#contradicted(head);
      else if (head > this.#knownHead && (this.#terminalSeq === null || head <= this.#terminalSeq)) {
        this.#raiseHead(head);
      }
      // Events with a seq at or below the head are all accounted for; the event at `head` itself
      // was seen when the page returned it.
      this.#verifiedEpoch = Math.max(this.#verifiedEpoch, read.epoch);
    }
    this.#pump();
  }

  /**
   * A hint announced a seq that the store, asked afterwards, does not have: a
   * faulty producer or a lagging replica. Believe the store (and the events
   * the feed has held), or the feed would read the same short page forever;
   * a real event is announced again by the next hint or resync.
   */
  #contradicted(head: number): void {
    this.#logger.warn(
      { taskId: this.taskId, announcedSeq: this.#knownHead, storeSeq: head },
      'a hint announced events the event store does not have; following the store',
    );
    this.#knownHead = Math.max(head, this.#highestSeen);
  }

  #onReadError(read: StoreRead, error: unknown): void {
    this.#reads.delete(read);
    if (this.#disposed) return;
    if (errorCode(error) === 'UNKNOWN_TASK') {
      this.fail(error);
      return;
    }
    this.#failures++;
    if (this.#failures > this.#settings.readRetries) {
      this.#logger.error(
        { taskId: this.taskId, err: error, attempts: this.#failures },
        'reading task events failed; giving up on its subscribers',
      );
      this.#failures = 0;
      this.fail(error);
      return;
    }
    if (this.#failures === 1) {
      this.#logger.warn({ taskId: this.taskId, err: error }, 'reading task events failed; retrying');
    }
    if (this.#retryTimer === null) {
      const delay = Math.min(this.#settings.readRetryDelayMs * 2 ** (this.#failures - 1), MAX_RETRY_DELAY_MS);
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        this.#scheduleReads();
      }, delay);
    }
  }
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

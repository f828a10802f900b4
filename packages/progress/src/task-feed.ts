import type { Logger } from 'pino';
import type { Subscriber } from 'rxjs';
import { isTerminalType, type StoredEvent } from './events.js';
import { sameStoredEvent, type HintChecks } from './hint-check.js';
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
  checks: HintChecks;
  /** Unverified inline events a task holds at most while they wait for a store read. */
  maxUnverified: number;
}

/** An inline event not yet compared with the log, and the #tick when it arrived. */
interface UnverifiedEvent {
  readonly event: StoredEvent;
  readonly tick: number;
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
  /** Inline events of hints from other processes, by seq: compared with the store's when a read returns. */
  readonly #unverified = new Map<number, UnverifiedEvent>();
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

  /**
   * A hint announces events up to its seq. Its inline events are delivered as
   * they are when `trusted` (from this process) or authenticated (their MAC
   * verified with the hint key); otherwise they are held until a store read
   * shows whether the log has them, and subscribers get the stored events
   * (invariant 8). Either way they go through the same cache, so order,
   * gaps and duplicates are handled alike.
   */
  onHint(hint: Hint, trusted: boolean): void {
    if (this.#disposed) return;
    const cap = this.#terminalSeq ?? Number.POSITIVE_INFINITY;
    if (hint.seq > this.#knownHead && hint.seq <= cap) this.#raiseHead(hint.seq);
    if (hint.events) {
      if (trusted) {
        this.#settings.checks.trusted(hint.events.length);
        this.#addEvents(hint.events);
      } else if (hint.authentication === 'verified') {
        this.#settings.checks.authenticated(hint.events.length);
        this.#addEvents(hint.events);
      } else {
        if (hint.authentication !== undefined) {
          this.#settings.checks.unauthenticated({
            taskId: this.taskId,
            seq: hint.seq,
            events: hint.events.length,
            problem: hint.authentication,
          });
        }
        this.#holdUnverified(hint.events);
      }
    }
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
    this.#unverified.clear();
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

  #holdUnverified(events: readonly StoredEvent[]): void {
    const lowest = this.#lowestCursor();
    for (const event of events) {
      // Below every cursor the event would be delivered to nobody: nothing to check.
      if (event.taskId !== this.taskId || event.seq <= lowest || this.#cache.has(event.seq)) continue;
      if (this.#unverified.size >= this.#settings.maxUnverified && !this.#unverified.has(event.seq)) {
        this.#reject(event, 'overflow');
        continue;
      }
      this.#unverified.set(event.seq, { event, tick: this.#tick });
    }
  }

  /**
   * Compares held inline events with what a read returned. `head` is the
   * task's last seq when the read reached it: an inline event above it that
   * arrived before the read was issued is not in the log (a notification is
   * sent only after its append committed).
   */
  #checkUnverified(read: StoreRead, events: readonly StoredEvent[], head: number | null): void {
    if (this.#unverified.size === 0) return;
    let matched = 0;
    for (const stored of events) {
      const held = this.#unverified.get(stored.seq);
      if (held === undefined) continue;
      this.#unverified.delete(stored.seq);
      if (sameStoredEvent(held.event, stored)) matched++;
      else this.#reject(held.event, 'differs-from-log');
    }
    if (matched > 0) this.#settings.checks.matched(matched);
    if (head === null) return;
    for (const [seq, held] of this.#unverified) {
      if (seq > head && held.tick < read.tick) {
        this.#unverified.delete(seq);
        this.#reject(held.event, 'not-in-log');
      }
    }
  }

  #reject(event: StoredEvent, reason: 'differs-from-log' | 'not-in-log' | 'overflow'): void {
    this.#settings.checks.rejected({
      taskId: this.taskId,
      seq: event.seq,
      claimedType: String(event.type),
      reason,
    });
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
      this.#unverified.clear();
      return;
    }
    // Held events every cursor has passed were delivered from the store and compared on the way.
    for (const seq of this.#unverified.keys()) if (seq <= lowest) this.#unverified.delete(seq);
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
    this.#checkUnverified(read, events, head);
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
    // Rate-limited: anyone who reaches the channel can send such hints.
    this.#settings.checks.falseAnnouncement({
      taskId: this.taskId,
      announcedSeq: this.#knownHead,
      storeSeq: head,
    });
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

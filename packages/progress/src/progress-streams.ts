import { pino, type Logger } from 'pino';
import { Observable, scan, type Subscription } from 'rxjs';
import type { StoredEvent } from './events.js';
import { HintChecks, type HintCheckCounts } from './hint-check.js';
import { reduceTask } from './reducer.js';
import type { EventReader } from './store.js';
import { TaskFeed, type TaskCursor, type TaskFeedSettings } from './task-feed.js';
import { initialTaskState, type TaskState } from './task-state.js';
import type { HintSource } from './transport.js';

/** Options of {@link ProgressStreams}. */
export interface ProgressStreamsOptions {
  /** Where events are read from: the log is the truth (invariant 3, docs/invariants.md). */
  store: EventReader;
  /** Hints of new events (a transport, the notifier, or a LocalHintSource). */
  hints: HintSource;
  /** Default: silent. */
  logger?: Logger;
  /**
   * Events per store read. Default 500. Keep it at or below the store's own
   * page size (1000 by default in both stores): a page shorter than this is
   * taken to mean the read reached the task's last event.
   */
  readPageSize?: number;
  /** Store reads in flight per task at most. Default 4. */
  maxConcurrentReads?: number;
  /**
   * Failed store reads retried (UnknownTaskError is not retried) before the
   * task's subscribers get the error. Default 10: with the doubling delay
   * below that is about 30 s of retries, so a database restart (a held hint
   * may need a read while it is down) does not end its subscribers' streams.
   */
  readRetries?: number;
  /** Delay before the first retry, doubled each time up to 5 s. Default 200 ms. */
  readRetryDelayMs?: number;
  /**
   * Unverified inline events (hints from other processes) a task holds at
   * most while they wait for the store read that checks them. Default 1000.
   */
  maxUnverifiedEvents?: number;
  /** At most one warning about dropped inline events per this many ms. Default 10,000. */
  hintWarningIntervalMs?: number;
}

/** Options of {@link ProgressStreams.events$}. */
export interface EventsOptions {
  /** Emit events with a seq greater than this (the last one the caller has). Default 0: all. */
  after?: number;
}

/**
 * Live progress of tasks as RxJS streams, delivered from the event log and
 * woken by hints. All subscribers of one task in this process share one
 * upstream: one `hints.watch(taskId)` and one TaskFeed, counted, released
 * with the last subscriber; store reads for the task are shared too, so the
 * load on the store does not grow with the number of subscribers.
 */
export class ProgressStreams {
  readonly #store: EventReader;
  readonly #hints: HintSource;
  readonly #logger: Logger;
  readonly #settings: TaskFeedSettings;
  readonly #feeds = new Map<string, TaskFeed>();
  readonly #checks: HintChecks;
  #upstream: Subscription | null = null;

  constructor(options: ProgressStreamsOptions) {
    this.#store = options.store;
    this.#hints = options.hints;
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'progress-streams' });
    this.#checks = new HintChecks({
      logger: this.#logger,
      logIntervalMs: nonNegativeInteger('hintWarningIntervalMs', options.hintWarningIntervalMs ?? 10_000),
    });
    this.#settings = {
      checks: this.#checks,
      maxUnverified: positiveInteger('maxUnverifiedEvents', options.maxUnverifiedEvents ?? 1000),
      store: this.#store,
      logger: this.#logger,
      readPageSize: positiveInteger('readPageSize', options.readPageSize ?? 500),
      maxConcurrentReads: positiveInteger('maxConcurrentReads', options.maxConcurrentReads ?? 4),
      readRetries: nonNegativeInteger('readRetries', options.readRetries ?? 10),
      readRetryDelayMs: nonNegativeInteger('readRetryDelayMs', options.readRetryDelayMs ?? 200),
    };
  }

  /**
   * Every event of the task with a seq greater than `after`, exactly once and
   * in seq order, then completes after the terminal event (at once when the
   * task ended at or before `after`). Errors with the store's UnknownTaskError
   * for a task that was never created.
   */
  events$(taskId: string, options: EventsOptions = {}): Observable<StoredEvent> {
    const after = options.after ?? 0;
    return new Observable<StoredEvent>((subscriber) => {
      if (!Number.isSafeInteger(after) || after < 0) {
        subscriber.error(
          new RangeError(`events$ of task ${JSON.stringify(taskId)}: after must be a seq >= 0, got ${after}`),
        );
        return;
      }
      const feed = this.#acquire(taskId);
      const cursor = feed.add(subscriber, after);
      // Runs at once when add() already completed the subscriber (the task ended at or before `after`).
      return () => this.#release(feed, cursor);
    });
  }

  /** The task's state folded from its first event, emitted after each event; completes with the task. */
  state$(taskId: string): Observable<TaskState> {
    return this.events$(taskId).pipe(scan(reduceTask, initialTaskState(taskId)));
  }

  /**
   * What became of the inline events of hints (invariant 8): taken (from this
   * process, or authenticated by their MAC), matched, or dropped and why;
   * and how many came with a MAC that was invalid or missing.
   */
  hintCheckCounts(): HintCheckCounts {
    return this.#checks.counts();
  }

  /** Tasks that have at least one subscriber in this process. */
  get watchedTaskCount(): number {
    return this.#feeds.size;
  }

  /** Number of subscribers of a task's events$ (and state$) in this process. */
  subscriberCount(taskId: string): number {
    return this.#feeds.get(taskId)?.subscriberCount ?? 0;
  }

  #acquire(taskId: string): TaskFeed {
    const existing = this.#feeds.get(taskId);
    if (existing) return existing;
    this.#ensureUpstream();
    const feed = new TaskFeed(taskId, this.#settings);
    this.#feeds.set(taskId, feed);
    // Watch before the feed's first read: an event committed after that read is then hinted.
    this.#hints.watch(taskId);
    return feed;
  }

  #release(feed: TaskFeed, cursor: TaskCursor): void {
    feed.remove(cursor);
    if (feed.subscriberCount > 0 || this.#feeds.get(feed.taskId) !== feed) return;
    this.#feeds.delete(feed.taskId);
    feed.dispose();
    this.#hints.unwatch(feed.taskId);
    if (this.#feeds.size === 0) {
      this.#upstream?.unsubscribe();
      this.#upstream = null;
    }
  }

  /** One subscription to the hint source for all tasks, routed by task id. */
  #ensureUpstream(): void {
    if (this.#upstream !== null) return;
    // Only events that never left this process, or that it read from the log, are taken as they are;
    // the feed takes authenticated ones too, and checks the rest against the log (invariant 8).
    const inProcess = this.#hints.inProcess === true;
    const upstream = this.#hints.hints$.subscribe({
      next: (hint) => this.#feeds.get(hint.taskId)?.onHint(hint, inProcess || hint.readFromLog === true),
      error: (error: unknown) => this.#upstreamFailed(error),
    });
    upstream.add(
      this.#hints.resync$.subscribe({
        next: () => {
          for (const feed of [...this.#feeds.values()]) feed.onResync();
        },
        error: (error: unknown) => this.#upstreamFailed(error),
      }),
    );
    this.#upstream = upstream;
  }

  /** Without hints no subscriber would hear of new events: say so rather than go quiet. */
  #upstreamFailed(error: unknown): void {
    this.#logger.error({ err: error }, 'the hint source failed; ending every progress stream');
    this.#upstream = null;
    for (const feed of [...this.#feeds.values()]) feed.fail(error);
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new RangeError(`ProgressStreams ${name} must be an integer >= 1, got ${value}`);
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`ProgressStreams ${name} must be an integer >= 0, got ${value}`);
  return value;
}

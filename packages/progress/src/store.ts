import type { NewEvent, StoredEvent } from './events.js';

/** Options of {@link EventReader.readTask}. */
export interface ReadTaskOptions {
  /** Return events with seq greater than this. Default 0 (from the start). */
  after?: number;
  /** At most this many events. Default: the store's page size. */
  limit?: number;
}

/** Options of {@link EventReader.readAll}. */
export interface ReadAllOptions {
  /** Return events with a global position greater than this. */
  afterPosition: number;
  /** At most this many events. Default: the store's page size. */
  limit?: number;
}

/** What {@link EventReader.readAllPage} returns. */
export interface ReadAllPage {
  /** The events readAll returns for the same options. */
  events: StoredEvent[];
  /**
   * The highest position of a committed event this read held back because an
   * earlier position may still commit (invariant 4, docs/invariants.md), among
   * the `limit` committed events after `afterPosition`; null when nothing was
   * held back. Such an event becomes readable as soon as the appends in flight
   * below it end, usually within milliseconds: a reader that waits a whole
   * interval for its next read delays it by that interval.
   */
  heldBackTo: number | null;
}

/** The read side of the event log, all that subscribers and transports need. */
export interface EventReader {
  /** A task's events in seq order. Rejects with UnknownTaskError for a task that was never created. */
  readTask(taskId: string, options?: ReadTaskOptions): Promise<StoredEvent[]>;
  /**
   * Events of every task in position order. Never returns a position while an
   * earlier one may still commit (invariant 4, docs/invariants.md): a reader that resumes after the
   * last position it saw cannot skip a late commit.
   */
  readAll(options: ReadAllOptions): Promise<StoredEvent[]>;
  /** readAll, and whether it held back committed events behind an append still in flight. */
  readAllPage(options: ReadAllOptions): Promise<ReadAllPage>;
  /** The highest committed seq of each given task, in one query; tasks without events are absent. */
  latestSeqs(taskIds: readonly string[]): Promise<Map<string, number>>;
  /** The position a new reader of readAll starts after to see only what comes next. */
  headPosition(): Promise<number>;
}

/** What an append hook may do inside the append transaction. */
export interface AppendTransaction {
  /** Runs a statement now, inside the transaction. */
  query(text: string, values?: readonly unknown[]): Promise<unknown>;
  /**
   * Queues a NOTIFY that goes out with the COMMIT, in the same round trip
   * (PostgreSQL delivers notifications at commit anyway); a failure of it
   * rolls the append back like a failed query.
   */
  notify(channel: string, payload: string): void;
}

/**
 * Runs inside the append transaction after the events are written, before
 * commit: the PostgreSQL transport issues NOTIFY here, so a notification is
 * never sent for events that did not commit (invariant 1, docs/invariants.md).
 * `events` are what the transaction wrote: one task's (append), or, for
 * appendMany's hook, every task's, each task's together and in seq order.
 */
export type AppendHook = (tx: AppendTransaction, events: readonly StoredEvent[]) => Promise<void>;

/** Options of {@link EventAppender.append}. */
export interface AppendOptions {
  /** Reject with StaleSequenceError unless the task's last seq is exactly this (0 for a new task). */
  expectedSeq?: number;
  /** Called inside the transaction; its failure rolls the append back. */
  hook?: AppendHook;
  /**
   * The attempt of the TaskStarted of the run this append belongs to. The
   * append is refused with SupersededAttemptError when a later run started
   * (see applyFence): a worker that lost its job cannot write (invariant 9).
   * Default: no fence (producers that are not a run: cancel requests, the
   * dead-job handler).
   */
  fence?: number;
  /**
   * Names this batch, so that an append retried after a lost acknowledgement
   * (the commit went through, the reply did not) is not written twice: when
   * the task already has a batch with this key, the append writes nothing and
   * returns that batch's events as stored, before any other check (a retried
   * terminal event or `expectedSeq` would otherwise be refused). Keys are per
   * task; a key reused for other events is refused with
   * IdempotencyKeyReusedError. 1 to 200 characters. Default: none (every
   * append writes).
   */
  idempotencyKey?: string;
}

/** One task's part of {@link EventAppender.appendMany}. */
export interface TaskBatch {
  taskId: string;
  events: readonly NewEvent[];
  /** As for append; the hook runs once for this task's events. */
  options?: AppendOptions;
}

/** Options of {@link EventAppender.appendMany}. */
export interface AppendManyOptions {
  /**
   * Called once inside the transaction, after every batch is written, with
   * the events it wrote (tasks in the order given; none of a batch replayed
   * by its idempotency key); not called when it wrote nothing. Its failure
   * rolls everything back. One call for the whole transaction is what lets a
   * transport announce all its tasks in one notification.
   */
  hook?: AppendHook;
}

/** The write side of the event log. */
export interface EventAppender {
  /**
   * Appends events to one task in one transaction and returns them as stored.
   * Appends to one task are serialized; different tasks do not wait for each other.
   */
  append(taskId: string, events: readonly NewEvent[], options?: AppendOptions): Promise<StoredEvent[]>;
  /**
   * Appends to several tasks (each at most once) in one transaction: each
   * batch follows append's rules, and either all are written or none (the
   * first refusal rejects the whole call). Returns each batch's events as
   * stored, in the order given. A store without it is written to with one
   * append per task.
   */
  appendMany?(batches: readonly TaskBatch[], options?: AppendManyOptions): Promise<StoredEvent[][]>;
}

export interface EventStore extends EventReader, EventAppender {}

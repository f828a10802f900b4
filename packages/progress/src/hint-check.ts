import type { Logger } from 'pino';
import type { StoredEvent } from './events.js';

/**
 * Invariant 8: a notification can announce events, never define them. An
 * inline event from another process is delivered only when it is
 * authenticated (its MAC verified with PROGRESS_HINT_KEY, see hint-key.ts) or
 * identical to the stored one; the rest is dropped here, counted and logged
 * at a limited rate, and the subscribers get the real events from the store.
 */

/** Why an inline event of a hint was not delivered. */
export type HintRejectionReason =
  /** The store holds a different event at that seq (a forged or corrupted hint). */
  | 'differs-from-log'
  /** The store, read after the hint arrived, has no event at that seq. */
  | 'not-in-log'
  /** More unverified events were waiting than a task may hold; the oldest surplus is dropped. */
  | 'overflow';

export const HINT_REJECTION_REASONS: readonly HintRejectionReason[] = [
  'differs-from-log',
  'not-in-log',
  'overflow',
];

/** Why the MAC of a hint did not authenticate its inline events, in a process that has a hint key. */
export type HintSignatureProblem =
  /** A MAC came but does not verify: forged, altered, or made with another key. */
  | 'invalid'
  /** No MAC came: a sender without the key (or one from before keys). */
  | 'missing';

export const HINT_SIGNATURE_PROBLEMS: readonly HintSignatureProblem[] = ['invalid', 'missing'];

/** One inline event that did not reach any subscriber. */
export interface HintRejection {
  taskId: string;
  seq: number;
  /** The type the hint claimed; a string because a forged hint may claim anything. */
  claimedType: string;
  reason: HintRejectionReason;
}

/** Counts of inline events since the process started, by outcome. */
export interface HintCheckCounts {
  /** Inline events taken without a store read: from a source inside this process. */
  trusted: number;
  /** Inline events from another process taken without a store read: their MAC verified with the hint key. */
  authenticated: number;
  /** Inline events from another process that matched the stored event at their seq. */
  matched: number;
  /** Inline events dropped, by reason. */
  rejected: Record<HintRejectionReason, number>;
  /**
   * Inline events whose MAC did not authenticate them, by why, counted only
   * when this process has a hint key. Each was then checked against the log,
   * so it is counted as matched or rejected too.
   */
  unauthenticated: Record<HintSignatureProblem, number>;
  /** Hints that announced a seq the store, read afterwards, did not have. */
  falseAnnouncements: number;
}

/**
 * Whether two events are the same stored event. Key order in `data` does not
 * matter (a JSON column and a parsed payload may order keys differently);
 * every other difference does.
 */
export function sameStoredEvent(a: StoredEvent, b: StoredEvent): boolean {
  return (
    a.taskId === b.taskId &&
    a.seq === b.seq &&
    a.position === b.position &&
    a.type === b.type &&
    a.time === b.time &&
    canonicalJson(a.data) === canonicalJson(b.data)
  );
}

/**
 * JSON with object keys sorted at every level: the same value gives the same
 * text whatever order its keys were built in. Used to compare events.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Options of {@link HintChecks}. */
export interface HintChecksOptions {
  logger: Logger;
  /** At most one warning per this many milliseconds; the others are counted in the next one. Default 10,000. */
  logIntervalMs?: number;
  /** Milliseconds on a monotonic clock; injectable for tests. Default performance.now(). */
  now?: () => number;
}

/**
 * Counts what became of inline events and logs rejections at a limited rate:
 * someone flooding the channel with forged hints must not flood the log too.
 */
export class HintChecks {
  readonly #logger: Logger;
  readonly #logIntervalMs: number;
  readonly #now: () => number;
  readonly #counts: HintCheckCounts = {
    trusted: 0,
    authenticated: 0,
    matched: 0,
    rejected: { 'differs-from-log': 0, 'not-in-log': 0, overflow: 0 },
    unauthenticated: { invalid: 0, missing: 0 },
    falseAnnouncements: 0,
  };
  #lastLogAt: number | null = null;
  #suppressed = 0;

  constructor(options: HintChecksOptions) {
    this.#logger = options.logger;
    this.#logIntervalMs = options.logIntervalMs ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** A copy of the counts. */
  counts(): HintCheckCounts {
    return {
      ...this.#counts,
      rejected: { ...this.#counts.rejected },
      unauthenticated: { ...this.#counts.unauthenticated },
    };
  }

  trusted(count: number): void {
    this.#counts.trusted += count;
  }

  matched(count: number): void {
    this.#counts.matched += count;
  }

  authenticated(count: number): void {
    this.#counts.authenticated += count;
  }

  /**
   * `events` inline events of one hint came with a MAC that did not verify,
   * or with none; they go to the log check. Only a MAC that does not verify
   * is logged: a missing one is what every hint of a sender without the key
   * looks like, and the count says how many.
   */
  unauthenticated(details: {
    taskId: string;
    seq: number;
    events: number;
    problem: HintSignatureProblem;
  }): void {
    this.#counts.unauthenticated[details.problem] += details.events;
    if (details.problem === 'invalid') {
      this.#warn(
        details,
        'the MAC of a progress notification does not verify with PROGRESS_HINT_KEY (forged, altered, or signed with another key); its events are checked against the event log',
      );
    }
  }

  rejected(rejection: HintRejection): void {
    this.#counts.rejected[rejection.reason]++;
    this.#warn(
      rejection,
      'dropped an inline event of a progress notification that does not match the event log; subscribers get the stored event instead',
    );
  }

  /** A hint announced `announcedSeq`; the store, asked afterwards, had only up to `storeSeq`. */
  falseAnnouncement(details: { taskId: string; announcedSeq: number; storeSeq: number }): void {
    this.#counts.falseAnnouncements++;
    this.#warn(details, 'a hint announced events the event store does not have; following the store');
  }

  #warn(details: object, message: string): void {
    const now = this.#now();
    if (this.#lastLogAt !== null && now - this.#lastLogAt < this.#logIntervalMs) {
      this.#suppressed++;
      return;
    }
    this.#logger.warn({ ...details, suppressedSinceLastWarning: this.#suppressed }, message);
    this.#lastLogAt = now;
    this.#suppressed = 0;
  }
}

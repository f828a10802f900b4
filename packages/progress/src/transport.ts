import type { Observable } from 'rxjs';
import type { StoredEvent } from './events.js';
import type { HintAuthentication } from './hint-key.js';
import type { AppendHook } from './store.js';

export const TRANSPORT_TYPES = ['postgres', 'redis', 'polling'] as const;
export type TransportType = (typeof TRANSPORT_TYPES)[number];

/**
 * A notification that a task has events up to `seq` in the store. Hints are
 * only hints (invariant 3, docs/invariants.md): subscribers read what they miss from the log.
 */
export interface Hint {
  taskId: string;
  /** The highest seq this hint announces. */
  seq: number;
  /** The announced events when they fit in the message; absent when sent by reference. */
  events?: readonly StoredEvent[];
  /**
   * True when this process read `events` from the event log itself (the
   * polling transport, a reference resolved by the transport): they are the
   * stored events and are delivered without a check. Set only by code in
   * this process, never copied from a received message (invariant 8).
   */
  readFromLog?: boolean;
  /**
   * What this process's transport found of the MAC that came with `events`
   * (PROGRESS_HINT_KEY, see HintKey): `verified` events are delivered
   * without a log read; `invalid` and `missing` ones are checked against
   * the log like unsigned ones, and counted. Absent when this process has no
   * key or the hint has no events. Set only by code in this process from its
   * own check, never copied from a received message (invariant 8).
   */
  authentication?: HintAuthentication;
}

/** Where subscribers get their hints: a transport, or the notifier that switches between them. */
export interface HintSource {
  /**
   * True only when hints never leave this process (LocalHintSource): their
   * inline events are delivered as they are. Otherwise (the default) inline
   * events are announcements to check against the log unless their MAC
   * verified (Hint.authentication; invariant 8): anyone who can reach the
   * channel can send a notification.
   */
  readonly inProcess?: boolean;
  /** Hints for watched tasks, from one shared listener per process (invariant 5, docs/invariants.md). */
  readonly hints$: Observable<Hint>;
  /**
   * Emits when hints may have been missed (reconnect, resubscribe, switch of
   * transport): every subscriber catches up from the store.
   */
  readonly resync$: Observable<void>;
  /** Start receiving hints for a task; counted, so watch twice needs unwatch twice. */
  watch(taskId: string): void;
  unwatch(taskId: string): void;
}

/** Health as the transport itself sees it. */
export interface TransportHealth {
  healthy: boolean;
  /** Why it is unhealthy; null when healthy. */
  reason: string | null;
}

/**
 * Carries hints between processes. One package implements it per medium
 * (transport-postgres, transport-redis, transport-polling); the notifier
 * depends only on this interface.
 */
export interface Transport extends HintSource {
  readonly type: TransportType;
  /** Connects and starts listening. Rejects with TransportUnavailableError, with the cause. */
  start(): Promise<void>;
  /**
   * Runs inside the append transaction (PostgreSQL NOTIFY), once per
   * transaction: its events may be several tasks' (appendMany), each task's
   * together and in seq order.
   */
  readonly inTransaction?: AppendHook;
  /**
   * Runs after the append committed (Redis PUBLISH), once per transaction
   * with all its events, as inTransaction. A failure here loses no event:
   * subscribers catch up by their periodic position check.
   */
  afterCommit?(events: readonly StoredEvent[]): Promise<void>;
  /** Changes of connection health, starting with the current one. */
  readonly health$: Observable<TransportHealth>;
  /**
   * A real round trip through this transport: sends a probe and resolves with
   * the milliseconds until it came back. Rejects when it does not arrive in time.
   */
  probe(timeoutMs: number): Promise<number>;
  /** Closes every connection; the transport cannot be started again. */
  stop(): Promise<void>;
}

/** What the notifier says about itself (invariant 6, docs/invariants.md); served by /readyz and doctor. */
export interface NotifierInfo {
  configured: TransportType;
  active: TransportType;
  healthy: boolean;
  /** True when the active transport is not the configured one. */
  fallback: boolean;
  /** Why the notifier is in this state (the fallback cause, or what was verified). */
  reason: string | null;
  /** ISO-8601 time of the last change. */
  since: string;
}

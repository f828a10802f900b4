import { BehaviorSubject, Subject } from 'rxjs';
import type { Observable, Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { NodebatchError } from '../errors.js';
import type { NewEvent, StoredEvent } from '../events.js';
import type { AppendHook, AppendOptions, EventStore } from '../store.js';
import type {
  Hint,
  HintSource,
  NotifierInfo,
  Transport,
  TransportHealth,
  TransportType,
} from '../transport.js';
import { backoffDelay, causeChain, errorMessage } from '../lib.js';
import type { BackoffOptions } from '../lib.js';

/** What went wrong when a transport could not start, and what to check; see diagnoseConnectionError in runtime. */
export interface ConnectionDiagnosis {
  /** The driver's or system's code (ECONNREFUSED, 28P01, ...), or a kind such as TIMEOUT. */
  code: string;
  /** One line naming the target and the cause, without secrets. */
  summary: string;
  /** Things to check, most likely first. */
  checklist: string[];
}

/** Options of {@link createNotifier}. */
export interface NotifierOptions {
  /** The transport configuration asks for (PROGRESS_NOTIFY_TYPE). */
  configured: TransportType;
  /** The event log: verified before any transport, and appended to by {@link Notifier.append}. */
  store: EventStore;
  /** Creates a fresh, unstarted transport of the configured type; called again for each retry of a failed start. */
  createTransport(type: TransportType): Transport;
  /** Creates a fresh, unstarted polling transport: the fallback, or the configured transport for `polling`. */
  pollTransport(): Transport;
  /** Where the configured transport connects (host, port, database, username, SSL mode, passwordSet); never a secret. */
  describeTarget?(type: TransportType): Record<string, unknown>;
  /** Explains a start failure with a tailored checklist. Default: the error's code and message, no checklist. */
  diagnose?(err: unknown, type: TransportType): ConnectionDiagnosis;
  logger: Logger;
  /** How long the configured transport may stay unhealthy at run time before polling takes over, in ms. Default 5000. */
  fallbackAfterMs?: number;
  /** Backoff between attempts to bring the configured transport back. Default 1 s doubling up to 30 s. */
  retry?: BackoffOptions;
  /** Time a probe may take, at start and on recovery, in ms. Default 5000. */
  probeTimeoutMs?: number;
  /** Clock for `since`; injectable for tests. */
  now?: () => Date;
}

/** What {@link Notifier.verify} saw. */
export interface VerifyResult {
  /** True only when a probe went through the active transport and came back. */
  ok: boolean;
  /** The transport that was probed: always the active one. */
  transport: TransportType;
  configured: TransportType;
  fallback: boolean;
  roundTripMs: number | null;
  /** Why the round trip failed; null when ok. */
  error: string | null;
}

/**
 * The one source of hints of a process, switching between the configured
 * transport and polling (invariant 6, docs/invariants.md), and the one way producers append so
 * that every append is announced on the right transport.
 */
export interface Notifier extends HintSource {
  /** Verifies the event log, then starts the configured transport or falls back to polling. */
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly info: NotifierInfo;
  /** The current info, then each change. */
  readonly info$: Observable<NotifierInfo>;
  /** A real round trip through the active transport. */
  verify(timeoutMs?: number): Promise<VerifyResult>;
  /** Appends with the transports' hooks: NOTIFY inside the transaction, PUBLISH after commit. */
  append(
    taskId: string,
    events: readonly NewEvent[],
    options?: NotifiedAppendOptions,
  ): Promise<StoredEvent[]>;
  /**
   * Appends to several tasks in one transaction (EventAppender.appendMany),
   * each task announced as by append. With a store that cannot, one append per task.
   */
  appendMany(batches: readonly NotifiedTaskBatch[]): Promise<StoredEvent[][]>;
}

/** What a producer may ask of an append; the hook is the notifier's. */
export type NotifiedAppendOptions = Pick<AppendOptions, 'expectedSeq' | 'fence' | 'idempotencyKey'>;

/** One task's part of {@link Notifier.appendMany}. */
export interface NotifiedTaskBatch {
  taskId: string;
  events: readonly NewEvent[];
  options?: NotifiedAppendOptions;
}

/** The event log could not be read at start: nothing works without it, so no fallback either. */
export class EventStoreUnavailableError extends NodebatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EVENT_STORE_UNAVAILABLE', message, options);
  }
}

export const DEFAULT_FALLBACK_AFTER_MS = 5_000;
const DEFAULT_RETRY: Required<BackoffOptions> = { minDelayMs: 1_000, maxDelayMs: 30_000 };
const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

export function createNotifier(options: NotifierOptions): Notifier {
  return new SwitchingNotifier(options);
}

class SwitchingNotifier implements Notifier {
  readonly hints$: Observable<Hint>;
  readonly resync$: Observable<void>;
  readonly info$: Observable<NotifierInfo>;

  readonly #hints = new Subject<Hint>();
  readonly #resync = new Subject<void>();
  readonly #infoState: BehaviorSubject<NotifierInfo>;
  readonly #logger: Logger;
  readonly #configured: TransportType;
  readonly #fallbackAfterMs: number;
  readonly #probeTimeoutMs: number;
  readonly #retry: BackoffOptions;
  readonly #now: () => Date;

  /** Watch counts of the process; each transport is told once per task (first watch / last unwatch). */
  readonly #watches = new Map<string, number>();
  /** The latest instance of the configured type: started, reconnecting, or failed to start. */
  #primary: Transport | null = null;
  #primaryStarted = false;
  #primaryHealth: TransportHealth = { healthy: false, reason: 'not started' };
  #primarySubscription: Subscription | null = null;
  /** The polling transport while it is active as a fallback. */
  #fallback: Transport | null = null;
  #active: Transport | null = null;
  #activeSubscription: Subscription | null = null;

  #state: 'new' | 'starting' | 'started' | 'stopped' = 'new';
  #fallbackTimer: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryAttempt = 0;
  /** Transitions run one at a time: a switch must finish before the next one looks at the state. */
  #transitions: Promise<void> = Promise.resolve();
  readonly #failingAfterCommit = new Set<Transport>();
  /** Whether "polling cannot start either" was logged for the current outage. */
  #pollingFailureReported = false;

  readonly #options: NotifierOptions;

  constructor(options: NotifierOptions) {
    this.#options = options;
    this.#configured = options.configured;
    this.#logger = options.logger.child({ component: 'notifier', configured: options.configured });
    this.#fallbackAfterMs = options.fallbackAfterMs ?? DEFAULT_FALLBACK_AFTER_MS;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#now = options.now ?? (() => new Date());
    this.#infoState = new BehaviorSubject<NotifierInfo>({
      configured: this.#configured,
      active: this.#configured,
      healthy: false,
      fallback: false,
      reason: 'not started',
      since: this.#now().toISOString(),
    });
    this.hints$ = this.#hints.asObservable();
    this.resync$ = this.#resync.asObservable();
    this.info$ = this.#infoState.asObservable();
  }

  get info(): NotifierInfo {
    return this.#infoState.value;
  }

  // ---- HintSource -------------------------------------------------------

  watch(taskId: string): void {
    const count = this.#watches.get(taskId) ?? 0;
    this.#watches.set(taskId, count + 1);
    if (count === 0) for (const transport of this.#liveTransports()) transport.watch(taskId);
  }

  unwatch(taskId: string): void {
    const count = this.#watches.get(taskId);
    if (count === undefined) return;
    if (count > 1) {
      this.#watches.set(taskId, count - 1);
      return;
    }
    this.#watches.delete(taskId);
    for (const transport of this.#liveTransports()) transport.unwatch(taskId);
  }

  // ---- lifecycle ---------------------------------------------------------

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`the notifier cannot start: it is ${this.#state}`);
    this.#state = 'starting';
    try {
      await this.#options.store.headPosition();
    } catch (err) {
      this.#state = 'new';
      this.#logger.error({ err }, 'notifier cannot start: the event store does not answer');
      throw new EventStoreUnavailableError(`the event store does not answer: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    await this.#serialized(async () => {
      if (this.#configured === 'polling') {
        await this.#startConfiguredPolling();
        return;
      }
      const outcome = await this.#tryPrimary();
      if (this.#isStopped()) return;
      if (outcome.ok) {
        this.#activateVerifiedPrimary(outcome.roundTripMs);
        return;
      }
      this.#logStartFailure(outcome.err);
      await this.#switchToFallback(this.#diagnose(outcome.err).summary);
    });
    if (this.#state === 'starting') this.#state = 'started';
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#clearFallbackTimer();
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    await this.#transitions.catch(() => undefined);
    this.#activeSubscription?.unsubscribe();
    this.#primarySubscription?.unsubscribe();
    const transports = this.#liveTransports();
    this.#primary = null;
    this.#fallback = null;
    this.#active = null;
    await Promise.allSettled(transports.map((transport) => transport.stop()));
    this.#hints.complete();
    this.#resync.complete();
    this.#infoState.complete();
  }

  // ---- verify and append -------------------------------------------------

  async verify(timeoutMs = this.#probeTimeoutMs): Promise<VerifyResult> {
    const info = this.info;
    const active = this.#active;
    const base = { transport: info.active, configured: this.#configured, fallback: info.fallback };
    if (!active) return { ...base, ok: false, roundTripMs: null, error: `notifier is ${this.#state}` };
    try {
      const roundTripMs = await active.probe(timeoutMs);
      return { ...base, transport: active.type, ok: true, roundTripMs, error: null };
    } catch (err) {
      return { ...base, transport: active.type, ok: false, roundTripMs: null, error: errorMessage(err) };
    }
  }

  async append(
    taskId: string,
    events: readonly NewEvent[],
    options: NotifiedAppendOptions = {},
  ): Promise<StoredEvent[]> {
    const { announcers, hook } = this.#announcers();
    const stored = await this.#options.store.append(taskId, events, withHook(options, hook));
    await this.#announceCommitted(announcers, stored);
    return stored;
  }

  async appendMany(batches: readonly NotifiedTaskBatch[]): Promise<StoredEvent[][]> {
    const { store } = this.#options;
    if (!store.appendMany) {
      const stored: StoredEvent[][] = [];
      for (const { taskId, events, options } of batches)
        stored.push(await this.append(taskId, events, options));
      return stored;
    }
    const { announcers, hook } = this.#announcers();
    // One hook and one after-commit call for the whole transaction: a
    // transport may announce all its tasks in one notification.
    const stored = await store.appendMany(
      batches.map(({ taskId, events, options = {} }) => ({
        taskId,
        events,
        options: withHook(options, undefined),
      })),
      hook ? { hook } : {},
    );
    await this.#announceCommitted(announcers, stored.flat());
    return stored;
  }

  /** Who announces an append now, and the hook that runs their in-transaction part. */
  #announcers(): { announcers: Transport[]; hook: AppendHook | undefined } {
    // The configured transport announces even while this process reads by polling:
    // other replicas may still listen on it, and their clients must not freeze.
    const announcers = [...new Set([this.#primary, this.#active].filter((t): t is Transport => t !== null))];
    const hooks = announcers
      .map((t) => t.inTransaction)
      .filter((hook): hook is AppendHook => hook !== undefined);
    const hook: AppendHook | undefined =
      hooks.length === 0
        ? undefined
        : async (tx, stored) => {
            for (const each of hooks) await each(tx, stored);
          };
    return { announcers, hook };
  }

  /** The after-commit part of announcing (PUBLISH); a failure is logged once per failing spell, never thrown. */
  async #announceCommitted(announcers: readonly Transport[], stored: readonly StoredEvent[]): Promise<void> {
    if (stored.length === 0) return;
    for (const transport of announcers) {
      // A primary that never started has no connection to publish on (a NOTIFY needs none: it rides the append).
      if (!transport.afterCommit || (transport === this.#primary && !this.#primaryStarted)) continue;
      try {
        await transport.afterCommit(stored);
        this.#failingAfterCommit.delete(transport);
      } catch (err) {
        // The events are committed; subscribers of this transport catch up by their position check.
        if (!this.#failingAfterCommit.has(transport)) {
          this.#failingAfterCommit.add(transport);
          this.#logger.warn(
            { err, transport: transport.type, taskIds: [...new Set(stored.map((event) => event.taskId))] },
            `${transport.type} could not announce committed events; subscribers will catch up from the log`,
          );
        }
      }
    }
  }

  // ---- transitions -------------------------------------------------------

  async #startConfiguredPolling(): Promise<void> {
    const polling = this.#options.pollTransport();
    this.#primary = polling;
    this.#applyWatches(polling);
    await polling.start();
    const roundTripMs = await polling.probe(this.#probeTimeoutMs);
    this.#primaryStarted = true;
    this.#primaryHealth = { healthy: true, reason: null };
    this.#activate(polling, { healthy: true, fallback: false, reason: 'polling configured, verified' });
    this.#watchPrimaryHealth(polling);
    this.#logger.info({ active: 'polling', roundTripMs }, 'polling configured, verified');
  }

  /** Starts (if needed) and probes the configured transport. */
  async #tryPrimary(): Promise<{ ok: true; roundTripMs: number } | { ok: false; err: unknown }> {
    if (!this.#primary || !this.#primaryStarted) {
      if (this.#primary) await this.#primary.stop().catch(() => undefined);
      this.#primaryStarted = false;
      let transport: Transport;
      try {
        // Creation may throw too, e.g. redis configured without a Redis address.
        transport = this.#options.createTransport(this.#configured);
      } catch (err) {
        return { ok: false, err };
      }
      this.#primary = transport;
      this.#applyWatches(transport);
      try {
        await transport.start();
      } catch (err) {
        return { ok: false, err };
      }
      if (this.#isStopped()) return { ok: false, err: new Error('stopped') };
      this.#primaryStarted = true;
      this.#watchPrimaryHealth(transport);
    }
    try {
      return { ok: true, roundTripMs: await this.#primary.probe(this.#probeTimeoutMs) };
    } catch (err) {
      return { ok: false, err };
    }
  }

  #watchPrimaryHealth(transport: Transport): void {
    this.#primarySubscription?.unsubscribe();
    this.#primarySubscription = transport.health$.subscribe((health) => {
      if (transport !== this.#primary) return;
      this.#primaryHealth = health;
      this.#onPrimaryHealth(health);
    });
  }

  #onPrimaryHealth(health: TransportHealth): void {
    if (this.#isStopped() || this.#state === 'new') return;
    const primaryActive = this.#active !== null && this.#active === this.#primary;
    if (!primaryActive) {
      // In fallback: a transport that says it is back gets a round trip at once, not after the backoff.
      if (health.healthy && this.#active) this.#scheduleRecovery(0);
      return;
    }
    if (health.healthy) {
      this.#clearFallbackTimer();
      if (!this.info.healthy) {
        this.#setInfo({ healthy: true, reason: 'reconnected' });
        this.#logger.info({ active: this.#configured }, `${this.#configured} notifier healthy again`);
      }
      return;
    }
    if (this.info.healthy || this.info.reason !== health.reason) {
      const wasHealthy = this.info.healthy;
      this.#setInfo({ healthy: false, reason: health.reason });
      if (wasHealthy) {
        this.#logger.warn(
          { reason: health.reason, fallbackAfterMs: this.#fallbackAfterMs },
          this.#configured === 'polling'
            ? `polling unhealthy: ${health.reason}`
            : `${this.#configured} notifier unhealthy: ${health.reason}; polling takes over in ${this.#fallbackAfterMs} ms unless it recovers`,
        );
      }
    }
    if (this.#configured !== 'polling' && !this.#fallbackTimer) {
      this.#fallbackTimer = setTimeout(() => {
        this.#fallbackTimer = null;
        void this.#serialized(async () => {
          if (this.#isStopped() || this.#active !== this.#primary || this.#primaryHealth.healthy) return;
          await this.#switchToFallback(this.#primaryHealth.reason ?? 'unhealthy');
        });
      }, this.#fallbackAfterMs);
      this.#fallbackTimer.unref();
    }
  }

  /** Polling takes over; the configured transport keeps being retried. Runs inside `serialized`. */
  async #switchToFallback(reason: string): Promise<void> {
    this.#clearFallbackTimer();
    await this.#startFallback(reason);
    this.#retryAttempt = 0;
    this.#scheduleRecovery(backoffDelay(0, this.#retry));
  }

  /**
   * Starts polling and makes it the active transport. When even polling
   * cannot start (the database is down too), the notifier says so and the
   * recovery loop tries again.
   */
  async #startFallback(reason: string): Promise<void> {
    if (this.#fallback) return;
    const polling = this.#options.pollTransport();
    this.#applyWatches(polling);
    try {
      await polling.start();
    } catch (err) {
      await polling.stop().catch(() => undefined);
      if (this.#isStopped()) return;
      const unavailable = `${reason}; polling cannot start either: ${errorMessage(err)}`;
      if (this.info.healthy || !this.#pollingFailureReported) {
        this.#logger.error(
          { err, reason },
          `no transport delivers progress: ${this.#configured} failed (${reason}) and polling cannot start`,
        );
      }
      this.#pollingFailureReported = true;
      this.#setInfo({ healthy: false, reason: unavailable });
      return;
    }
    if (this.#isStopped()) {
      await polling.stop().catch(() => undefined);
      return;
    }
    this.#pollingFailureReported = false;
    this.#fallback = polling;
    this.#activate(polling, { healthy: true, fallback: true, reason });
    this.#logger.warn(
      { active: 'polling', reason },
      `using polling as fallback for ${this.#configured}: ${reason}`,
    );
  }

  #scheduleRecovery(delayMs: number): void {
    if (this.#isStopped()) return;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#serialized(() => this.#recover());
    }, delayMs);
    this.#retryTimer.unref();
  }

  /** One attempt to bring the configured transport back. Runs inside `serialized`. */
  async #recover(): Promise<void> {
    if (this.#isStopped()) return;
    const primaryActive = this.#active !== null && this.#active === this.#primary;
    // Back by itself (a reconnect inside the fallback window): nothing to do.
    if (primaryActive && this.#primaryHealth.healthy) return;
    let outcome = await this.#tryPrimary();
    if (this.#isStopped()) return;
    if (outcome.ok && !this.#primaryHealth.healthy) {
      // The probe came back, but the transport lost its connection while it was in flight: switching
      // now would report a dead transport healthy, with no fallback timer to notice (invariant 6).
      // Its next return to health probes again at once.
      outcome = {
        ok: false,
        err: new Error(
          `${this.#configured} became unhealthy during the probe: ${this.#primaryHealth.reason}`,
        ),
      };
    }
    if (!outcome.ok && this.#active === this.#primary && this.#primaryHealth.healthy) {
      // Back by itself while the attempt was in flight (its listener reconnected after a restart,
      // and the probe sent during the outage timed out): it is active and delivers again. Starting
      // polling now would take over from a transport that works, after it was reported healthy.
      return;
    }
    if (outcome.ok) {
      const polling = this.#fallback;
      this.#fallback = null;
      this.#pollingFailureReported = false;
      this.#activateVerifiedPrimary(outcome.roundTripMs);
      if (polling)
        await polling.stop().catch((err: unknown) => this.#logger.debug({ err }, 'polling stop failed'));
      return;
    }
    this.#retryAttempt += 1;
    this.#logger.debug(
      { err: outcome.err, attempt: this.#retryAttempt },
      `${this.#configured} still unavailable`,
    );
    // Polling could not start before (or never had to): progress must flow somehow.
    if (!this.#fallback) {
      await this.#startFallback(this.#primaryHealth.reason ?? this.#diagnose(outcome.err).summary);
    }
    this.#scheduleRecovery(backoffDelay(this.#retryAttempt, this.#retry));
  }

  /**
   * Makes `transport` the one whose hints reach subscribers, then asks every
   * subscriber to resync: hints the old transport had in flight may be lost,
   * and the log has them. Subscribers drop seqs they already have, so nothing
   * is delivered twice either.
   */
  /** The configured transport passed a round trip: it delivers from now on, said once in the log. */
  #activateVerifiedPrimary(roundTripMs: number): void {
    this.#activate(this.#primary!, {
      healthy: true,
      fallback: false,
      reason: `round trip verified in ${Math.round(roundTripMs)} ms`,
    });
    this.#logger.info(
      { active: this.#configured, roundTripMs },
      `${this.#configured} notifier verified - multi-replica progress updates ready`,
    );
  }

  #activate(transport: Transport, info: Pick<NotifierInfo, 'healthy' | 'fallback' | 'reason'>): void {
    this.#clearFallbackTimer();
    this.#activeSubscription?.unsubscribe();
    this.#active = transport;
    const subscription = transport.hints$.subscribe((hint) => this.#hints.next(hint));
    subscription.add(transport.resync$.subscribe(() => this.#resync.next()));
    this.#activeSubscription = subscription;
    this.#setInfo({ ...info, active: transport.type });
    if (transport !== this.#primary) {
      // The fallback's own health matters while it is active (the primary's is watched separately).
      // Subscribed after setInfo: the current health is replayed at once and must not read as a change.
      subscription.add(
        transport.health$.subscribe((health) => {
          if (this.#active !== transport || this.#isStopped()) return;
          if (health.healthy !== this.info.healthy) {
            this.#setInfo({
              healthy: health.healthy,
              reason: health.healthy ? this.info.reason : health.reason,
            });
            if (health.healthy) this.#logger.info('polling fallback healthy again');
            else this.#logger.warn({ reason: health.reason }, `polling fallback unhealthy: ${health.reason}`);
          }
        }),
      );
    }
    this.#resync.next();
  }

  #setInfo(change: Partial<Omit<NotifierInfo, 'configured' | 'since'>>): void {
    const current = this.#infoState.value;
    const next: NotifierInfo = { ...current, ...change, configured: this.#configured, since: current.since };
    next.fallback = next.active !== this.#configured;
    if (
      next.active === current.active &&
      next.healthy === current.healthy &&
      next.fallback === current.fallback &&
      next.reason === current.reason
    ) {
      return;
    }
    next.since = this.#now().toISOString();
    this.#infoState.next(next);
  }

  #logStartFailure(err: unknown): void {
    const diagnosis = this.#diagnose(err);
    this.#logger.error(
      {
        transport: this.#configured,
        target: this.#options.describeTarget?.(this.#configured),
        code: diagnosis.code,
        error: errorMessage(err),
        checklist: diagnosis.checklist,
      },
      `${this.#configured} notifier cannot start: ${diagnosis.summary}`,
    );
  }

  #diagnose(err: unknown): ConnectionDiagnosis {
    if (this.#options.diagnose) return this.#options.diagnose(err, this.#configured);
    return { code: codeOf(err) ?? 'UNKNOWN', summary: errorMessage(err), checklist: [] };
  }

  #applyWatches(transport: Transport): void {
    for (const taskId of this.#watches.keys()) transport.watch(taskId);
  }

  #liveTransports(): Transport[] {
    return [
      ...new Set([this.#primary, this.#fallback, this.#active].filter((t): t is Transport => t !== null)),
    ];
  }

  #clearFallbackTimer(): void {
    if (this.#fallbackTimer) clearTimeout(this.#fallbackTimer);
    this.#fallbackTimer = null;
  }

  #isStopped(): boolean {
    return this.#state === 'stopped';
  }

  #serialized(work: () => Promise<void>): Promise<void> {
    const run = this.#transitions.then(work);
    this.#transitions = run.catch((err: unknown) =>
      this.#logger.error({ err }, 'notifier transition failed'),
    );
    return run;
  }
}

/** The first `code` along the cause chain: a TransportUnavailableError wraps the driver's error. */
function codeOf(err: unknown): string | undefined {
  for (const current of causeChain(err)) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'TRANSPORT_UNAVAILABLE') return code;
  }
  return undefined;
}

/** The producer's options with the notifier's hook. */
function withHook(options: NotifiedAppendOptions, hook: AppendHook | undefined): AppendOptions {
  return {
    ...(options.expectedSeq === undefined ? {} : { expectedSeq: options.expectedSeq }),
    ...(options.fence === undefined ? {} : { fence: options.fence }),
    ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
    ...(hook ? { hook } : {}),
  };
}

import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { Subject, distinctUntilChanged } from 'rxjs';
import type { Observable } from 'rxjs';
import type { Logger } from 'pino';
import {
  TransportUnavailableError,
  WatchCounts,
  describeError,
  probeRoundTrip,
  realScheduler,
} from '@nodebatch/progress';
import type {
  AppendHook,
  BackoffOptions,
  EventReader,
  Hint,
  HintKey,
  Scheduler,
  StoredEvent,
  Transport,
  TransportHealth,
} from '@nodebatch/progress';
import { ListenConnection } from './listen-connection.js';
import { MalformedPayloadLog } from './malformed-payload-log.js';
import { decodeNotification, encodeProbe, encodeTransaction, peekPayload } from './payload.js';
import type { Notification, PeekedEntry } from './payload.js';

export const DEFAULT_CHANNEL = 'nodebatch_progress';
export const DEFAULT_RECONNECT: Required<BackoffOptions> = { minDelayMs: 200, maxDelayMs: 5_000 };

/**
 * The LISTEN connection is up and the NOTIFY was accepted, yet the
 * notification never came back. Behind a pooler in transaction mode
 * (PgBouncer) this is what happens: the LISTEN was registered on a server
 * connection that went back to the pooler's pool, so nothing is delivered.
 */
export class NotificationNotDeliveredError extends TransportUnavailableError {
  override readonly code: string = 'NOTIFY_NOT_DELIVERED';
}

/** Options of {@link createPostgresTransport}. */
export interface PostgresTransportOptions {
  /** Pool of the main database; used to send probes (appends NOTIFY inside their own transaction). */
  pool: pg.Pool;
  /** Connection of the dedicated LISTEN client; the same database as the pool. */
  connection: pg.ClientConfig;
  /** Read once per process to resolve notifications sent by reference, instead of once per subscriber. */
  store: EventReader;
  /** Channel name (at most 63 bytes). Default `nodebatch_progress`. */
  channel?: string;
  logger: Logger;
  /**
   * Backoff between reconnects of the LISTEN client. Default 200 ms doubling
   * up to 5 s, with jitter: one connection per replica is cheap to retry, and
   * every second without it is a second of polling.
   */
  reconnect?: BackoffOptions;
  /** Liveness check of the LISTEN client, in ms. Default 10000. */
  heartbeatIntervalMs?: number;
  /** How long a liveness check may take before the connection is given up, in ms. Default 5000. */
  heartbeatTimeoutMs?: number;
  /** Minimum time between two log summaries of malformed payloads, in ms. Default 60000. */
  malformedSummaryIntervalMs?: number;
  /**
   * The hint key (PROGRESS_HINT_KEY) shared by every process that sends or
   * receives hints: notifications sent carry a MAC of their events, and the
   * events of received ones whose MAC verifies reach subscribers without a
   * log read (Hint.authentication). Default none: nothing signed, every
   * inline event checked against the log.
   */
  hintKey?: HintKey | undefined;
  /**
   * Announce the tasks of one append transaction in one NOTIFY (as many as
   * fit in one payload) instead of one NOTIFY per task
   * (PROGRESS_COMBINED_HINTS). Receivers of every version since combined
   * notifications exist read them; older ones ignore them as malformed, so
   * this is turned on once every process is upgraded. Default false.
   */
  combineTasks?: boolean;
  /** Source of jitter; injectable for tests. Default Math.random. */
  random?: () => number;
  /** Clock and timer of the probe; injectable for tests. Default: real timers. */
  scheduler?: Scheduler;
}

export interface PostgresTransport extends Transport {
  readonly type: 'postgres';
  readonly channel: string;
  /** NOTIFYs the events inside the append transaction, so only committed events are announced. */
  readonly inTransaction: AppendHook;
  /** Payloads on the channel that were not valid notifications (another program, a bug). */
  readonly malformedPayloads: number;
}

/**
 * LISTEN/NOTIFY transport: one LISTEN connection per process shared by every
 * watcher (invariant 5, docs/invariants.md); NOTIFY inside the append transaction (invariant 1, docs/invariants.md);
 * payloads over PostgreSQL's limit sent by reference and read from the log.
 */
export function createPostgresTransport(options: PostgresTransportOptions): PostgresTransport {
  return new PostgresTransportImpl(options);
}

class PostgresTransportImpl implements PostgresTransport {
  readonly type = 'postgres' as const;
  readonly channel: string;
  readonly hints$: Observable<Hint>;
  readonly resync$: Observable<void>;
  readonly health$: Observable<TransportHealth>;

  readonly #hints = new Subject<Hint>();
  readonly #watched = new WatchCounts();
  readonly #scheduler: Scheduler;
  readonly #probes = new Map<string, () => void>();
  readonly #instanceId = randomUUID();
  #probeCounter = 0;
  readonly #listener: ListenConnection;
  readonly #malformed: MalformedPayloadLog;
  readonly #logger: Logger;
  #state: 'new' | 'starting' | 'started' | 'stopped' = 'new';

  /**
   * Per task, the reference being read from the log and whatever of the same
   * task arrived after it: a task's later notifications wait behind it, to
   * keep their order, while other tasks' go on.
   */
  readonly #taskBacklog = new Map<string, Promise<void>>();

  readonly #options: PostgresTransportOptions;

  constructor(options: PostgresTransportOptions) {
    this.#options = options;
    this.channel = options.channel ?? DEFAULT_CHANNEL;
    this.#scheduler = options.scheduler ?? realScheduler;
    if (Buffer.byteLength(this.channel) > 63) {
      throw new RangeError(
        `channel name "${this.channel}" is longer than PostgreSQL's 63-byte identifier limit`,
      );
    }
    this.#logger = options.logger.child({ transport: 'postgres' });
    this.#malformed = new MalformedPayloadLog(
      this.#logger,
      this.channel,
      options.malformedSummaryIntervalMs ?? 60_000,
    );
    this.#listener = new ListenConnection({
      connection: options.connection,
      channel: this.channel,
      logger: this.#logger,
      reconnect: { ...DEFAULT_RECONNECT, ...options.reconnect },
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      random: options.random,
      onNotification: (payload) => this.#handle(payload),
    });
    this.hints$ = this.#hints.asObservable();
    this.resync$ = this.#listener.relistened$;
    this.health$ = this.#listener.health$.pipe(
      distinctUntilChanged((a, b) => a.healthy === b.healthy && a.reason === b.reason),
    );
  }

  get malformedPayloads(): number {
    return this.#malformed.count;
  }

  readonly inTransaction: AppendHook = (tx, events) => {
    const { hintKey: key, combineTasks: combine } = this.#options;
    // Sent with the COMMIT, in its round trip.
    for (const payload of encodeTransaction(events, { key, combine })) tx.notify(this.channel, payload);
    return Promise.resolve();
  };

  async start(): Promise<void> {
    if (this.#state === 'stopped')
      throw new TransportUnavailableError('the postgres transport was stopped; create a new one');
    if (this.#state !== 'new') return;
    this.#state = 'starting';
    try {
      await this.#listener.start();
    } catch (err) {
      await this.stop();
      throw new TransportUnavailableError(
        `cannot LISTEN on channel ${this.channel} at ${describeTarget(this.#options.connection)}: ${describeError(err)}`,
        { cause: err },
      );
    }
    if (this.#state === 'starting') this.#state = 'started';
    this.#logger.debug({ channel: this.channel }, 'listening');
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#malformed.stop();
    await this.#listener.stop();
    this.#hints.complete();
  }

  watch(taskId: string): void {
    this.#watched.add(taskId);
  }

  unwatch(taskId: string): void {
    this.#watched.remove(taskId);
  }

  async probe(timeoutMs: number): Promise<number> {
    if (this.#state !== 'started' || !this.#listener.healthy) {
      throw new TransportUnavailableError(
        `postgres transport is not listening: ${this.#listener.reason ?? this.#state}`,
      );
    }
    const id = `${this.#instanceId}:${++this.#probeCounter}`;
    const arrived = new Promise<void>((resolve) => this.#probes.set(id, resolve));
    try {
      return await probeRoundTrip({
        scheduler: this.#scheduler,
        timeoutMs,
        send: async () => {
          await this.#options.pool.query('SELECT pg_notify($1, $2)', [this.channel, encodeProbe(id)]);
          await arrived;
        },
        timeoutError: () =>
          new NotificationNotDeliveredError(
            `probe sent on channel ${this.channel} did not come back through LISTEN within ${timeoutMs} ms`,
          ),
      });
    } catch (err) {
      if (err instanceof TransportUnavailableError) throw err;
      throw new TransportUnavailableError(
        `cannot send a probe on channel ${this.channel}: ${describeError(err)}`,
        {
          cause: err,
        },
      );
    } finally {
      this.#probes.delete(id);
    }
  }

  /** Handles each notification of a payload now, or behind its task's backlog. */
  #handle(payload: string): void {
    const peeked = peekPayload(payload);
    if ('error' in peeked) {
      this.#malformed.record(payload, peeked.error);
      return;
    }
    for (const entry of peeked.entries) {
      const taskId = 'error' in entry ? undefined : entry.taskId;
      const backlog = taskId === undefined ? undefined : this.#taskBacklog.get(taskId);
      const run = (): Promise<void> | undefined => this.#handleEntry(payload, entry);
      const pending = backlog ? backlog.then(run, run) : run();
      if (pending && taskId !== undefined) this.#queueBehind(taskId, pending);
    }
  }

  #queueBehind(taskId: string, pending: Promise<void>): void {
    this.#taskBacklog.set(taskId, pending);
    const done = (): void => {
      if (this.#taskBacklog.get(taskId) === pending) this.#taskBacklog.delete(taskId);
    };
    pending.then(done, (err: unknown) => {
      // Not expected (a failed read is handled where it happens); the task's later notifications still go on.
      this.#logger.error({ err, taskId }, 'handling a progress notification failed');
      done();
    });
  }

  /** Synchronous for all but reference notifications, which read the store once for every subscriber. */
  #handleEntry(payload: string, peeked: PeekedEntry): Promise<void> | undefined {
    if ('error' in peeked) {
      this.#malformed.record(payload, peeked.error);
      return undefined;
    }
    // Every replica sees every task's notifications: drop what nobody here watches before validating it.
    if (peeked.taskId !== undefined && !this.#watched.has(peeked.taskId)) return undefined;
    const decoded = decodeNotification(peeked.json);
    if (!decoded.ok) {
      this.#malformed.record(payload, decoded.error);
      // A readable task and seq still say the log may have news: a hint without events costs one read.
      if (decoded.taskId !== undefined && decoded.seq !== undefined) {
        this.#emit({ taskId: decoded.taskId, seq: decoded.seq });
      }
      return undefined;
    }
    return this.#dispatch(decoded.notification);
  }

  #dispatch(notification: Notification): Promise<void> | undefined {
    switch (notification.kind) {
      case 'probe':
        this.#probes.get(notification.probe)?.();
        return undefined;
      case 'events': {
        const { taskId, seq, events, mac } = notification;
        const key = this.#options.hintKey;
        // One HMAC per notification, for every subscriber of the process.
        this.#emit(
          key
            ? { taskId, seq, events, authentication: key.authenticate({ taskId, seq, events }, mac) }
            : { taskId, seq, events },
        );
        return undefined;
      }
      case 'reference':
        return this.#resolveReference(notification);
    }
  }

  async #resolveReference(reference: { taskId: string; seq: number; from: number }): Promise<void> {
    const { taskId, seq, from } = reference;
    let events: StoredEvent[] | undefined;
    try {
      const read = await this.#options.store.readTask(taskId, { after: from - 1, limit: seq - from + 1 });
      if (read.length === seq - from + 1 && read[0]?.seq === from) events = read;
    } catch (err) {
      // Not fatal: the hint goes out without events and each subscriber reads the log itself.
      this.#logger.debug({ err, taskId, seq }, 'could not read events announced by reference');
    }
    this.#emit(events ? { taskId, seq, events, readFromLog: true } : { taskId, seq });
  }

  #emit(hint: Hint): void {
    if (this.#watched.has(hint.taskId)) this.#hints.next(hint);
  }
}

/** `host:port/database as user` of a client configuration; never the password. */
export function describeTarget(connection: pg.ClientConfig): string {
  let { host, port, database, user } = connection;
  if (connection.connectionString) {
    try {
      const url = new URL(connection.connectionString);
      host ??= decodeURIComponent(url.hostname);
      port ??= url.port ? Number(url.port) : undefined;
      database ??= decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined;
      user ??= decodeURIComponent(url.username) || undefined;
    } catch {
      // An unparsable connection string is reported by the driver itself.
    }
  }
  return `${host ?? 'localhost'}:${port ?? 5432}/${database ?? user ?? '?'} as ${user ?? '?'}`;
}

import pg from 'pg';
import { BehaviorSubject, Subject } from 'rxjs';
import type { Logger } from 'pino';
import { backoffDelay, describeError, withTimeout } from '@nodebatch/progress';
import type { BackoffOptions, TransportHealth } from '@nodebatch/progress';

/** Options of {@link ListenConnection}. */
interface ListenConnectionOptions {
  /** Where to connect; a dedicated client, never one from the pool (a pooled client would be handed to others). */
  connection: pg.ClientConfig;
  channel: string;
  logger: Logger;
  /** Backoff between reconnect attempts. Defaults: see DEFAULT_BACKOFF. */
  reconnect?: BackoffOptions;
  /**
   * How often the connection is checked with `SELECT 1`, in ms. Default 10000.
   * A connection that a firewall silently dropped raises no error by itself;
   * without this the listener would wait forever and report healthy.
   */
  heartbeatIntervalMs?: number;
  /** How long a heartbeat may take before the connection is given up, in ms. Default 5000. */
  heartbeatTimeoutMs?: number;
  /** Source of jitter; injectable for tests. Default Math.random. */
  random?: () => number;
  /** Called for each notification on the channel, in the order PostgreSQL delivers them (commit order). */
  onNotification(payload: string): void;
}

/** Default connect timeout of the listener: without one an unreachable host hangs for minutes. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * The one LISTEN connection of a process (invariant 5, docs/invariants.md). Reconnects with
 * backoff and jitter when it dies (server restart, pg_terminate_backend,
 * network), LISTENs again, then emits `relistened$`: notifications sent while
 * it was away are lost, so every subscriber must catch up from the log.
 */
export class ListenConnection {
  readonly #health = new BehaviorSubject<TransportHealth>({ healthy: false, reason: 'not started' });
  readonly #relistened = new Subject<void>();
  readonly health$ = this.#health.asObservable();
  readonly relistened$ = this.#relistened.asObservable();

  #client: pg.Client | null = null;
  #stopped = false;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #heartbeatInFlight = false;
  readonly #heartbeatIntervalMs: number;
  readonly #heartbeatTimeoutMs: number;

  readonly #options: ListenConnectionOptions;

  constructor(options: ListenConnectionOptions) {
    this.#options = options;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 5_000;
  }

  get healthy(): boolean {
    return this.#health.value.healthy;
  }

  get reason(): string | null {
    return this.#health.value.reason;
  }

  /** Connects and LISTENs once; rejects with the driver's error (the caller decides what it means). */
  async start(): Promise<void> {
    if (this.#stopped) throw new Error('listen connection was stopped');
    const client = await this.#connect();
    if (this.#stopped) {
      await endQuietly(client);
      return;
    }
    this.#adopt(client);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#reconnectTimer = null;
    this.#heartbeatTimer = null;
    const client = this.#client;
    this.#client = null;
    this.#setHealth(false, 'stopped');
    this.#health.complete();
    this.#relistened.complete();
    if (client) await endQuietly(client);
  }

  async #connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionTimeoutMillis: DEFAULT_CONNECT_TIMEOUT_MS,
      keepAlive: true,
      application_name: 'nodebatch-listener',
      ...this.#options.connection,
    });
    // Attached before connect: an 'error' without a listener would crash the process.
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    client.on('notification', (message) => {
      if (client === this.#client && message.channel === this.#options.channel) {
        this.#options.onNotification(message.payload ?? '');
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.#options.channel)}`);
    } catch (err) {
      await endQuietly(client);
      throw err;
    }
    return client;
  }

  #adopt(client: pg.Client): void {
    this.#client = client;
    this.#setHealth(true, null);
    if (!this.#heartbeatTimer) {
      this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), this.#heartbeatIntervalMs);
      this.#heartbeatTimer.unref();
    }
  }

  async #heartbeat(): Promise<void> {
    const client = this.#client;
    if (!client || this.#heartbeatInFlight) return;
    this.#heartbeatInFlight = true;
    try {
      await withTimeout(
        client.query('SELECT 1'),
        this.#heartbeatTimeoutMs,
        () => new Error(`heartbeat got no answer within ${this.#heartbeatTimeoutMs} ms`),
      );
    } catch (err) {
      this.#lost(client, err);
    } finally {
      this.#heartbeatInFlight = false;
    }
  }

  /** Idempotent: a dying client emits 'error' and 'end', and a heartbeat may fail too. */
  #lost(client: pg.Client, err: unknown): void {
    if (client !== this.#client || this.#stopped) return;
    this.#client = null;
    const reason = `listener connection lost: ${describeError(err)}`;
    this.#options.logger.warn({ err, channel: this.#options.channel }, reason);
    this.#setHealth(false, reason);
    void endQuietly(client);
    this.#scheduleReconnect(0);
  }

  #scheduleReconnect(attempt: number): void {
    if (this.#stopped) return;
    const delay = backoffDelay(attempt, this.#options.reconnect, this.#options.random);
    this.#reconnectTimer = setTimeout(() => void this.#reconnect(attempt), delay);
  }

  async #reconnect(attempt: number): Promise<void> {
    this.#reconnectTimer = null;
    let client: pg.Client;
    try {
      client = await this.#connect();
    } catch (err) {
      if (this.#stopped) return;
      // Logged at debug: the loss itself was logged once, and health$ carries the current reason.
      this.#options.logger.debug({ err, attempt }, 'listener reconnect failed');
      this.#setHealth(false, `listener cannot reconnect: ${describeError(err)}`);
      this.#scheduleReconnect(attempt + 1);
      return;
    }
    if (this.#stopped) {
      await endQuietly(client);
      return;
    }
    this.#adopt(client);
    this.#options.logger.info(
      { channel: this.#options.channel, attempts: attempt + 1 },
      'listener reconnected',
    );
    this.#relistened.next();
  }

  #setHealth(healthy: boolean, reason: string | null): void {
    const current = this.#health.value;
    if (current.healthy === healthy && current.reason === reason) return;
    this.#health.next({ healthy, reason });
  }
}

async function endQuietly(client: pg.Client): Promise<void> {
  try {
    await client.end();
  } catch {
    // The connection is gone already; nothing to release.
  }
}

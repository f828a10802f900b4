import pg from 'pg';
import type { Logger } from 'pino';
import {
  describeDatabase,
  describeRedis,
  listenerDatabase as configuredListenerDatabase,
  pgPoolConfig,
  redisClusterNodes,
  redisOptions,
} from '@nodebatch/config';
import type { DatabaseConfig, NodebatchConfig } from '@nodebatch/config';
import { createEventStore, runMigrations } from '@nodebatch/event-store';
import type { PostgresEventStore } from '@nodebatch/event-store';
import {
  HintKey,
  NodebatchError,
  ProgressStreams,
  TransportUnavailableError,
  createNotifier,
} from '@nodebatch/progress';
import type { BackoffOptions, Notifier, Transport, TransportType } from '@nodebatch/progress';
import { createPollingTransport } from '@nodebatch/transport-polling';
import { createPostgresTransport } from '@nodebatch/transport-postgres';
import { createRedisTransport } from '@nodebatch/transport-redis';
import { diagnoseConnectionError } from './diagnostics.js';
import type { ConnectionTarget } from './diagnostics.js';

/** Options of {@link createRuntime}. */
export interface RuntimeOptions {
  config: NodebatchConfig;
  logger: Logger;
  /** Environment for diagnostics (the Kubernetes hint). Default process.env. */
  env?: Record<string, string | undefined>;
  /** NOTIFY channel of the PostgreSQL transport. Default `nodebatch_progress`; tests use their own. */
  postgresChannel?: string;
  /** Pub/Sub channel of the Redis transport. Default `nodebatch:progress`; tests use their own. */
  redisChannel?: string;
  /**
   * Where the LISTEN connection goes, when not where the pool goes: LISTEN
   * does not work through PgBouncer in transaction mode, so the listener may
   * need to reach PostgreSQL directly. Default: `config.database` with its
   * listen settings (DB_LISTEN_URL, DB_LISTEN_HOST, DB_LISTEN_PORT) put over it.
   */
  listenerDatabase?: DatabaseConfig;
  /**
   * How long connecting to PostgreSQL may take, for the pool and the listener, in ms. Default 10000.
   * Without a limit a host that drops packets (a NetworkPolicy, a firewall) hangs the start for minutes.
   */
  connectTimeoutMs?: number;
  /** Backoff of the LISTEN connection's reconnects. Default: the transport's (200 ms up to 5 s). */
  listenerReconnect?: BackoffOptions;
  /** Backoff of the notifier's attempts to bring the configured transport back. Default 1 s up to 30 s. */
  notifierRetry?: BackoffOptions;
  /**
   * Run the event store's retention job (tasks finished more than
   * `eventStore.retentionDays` ago are deleted, hourly). Default true; every
   * replica runs it, since a delete of what is already gone costs nothing.
   */
  retention?: boolean;
  /**
   * Apply pending event store migrations at start, under a lock. Default
   * true. `nodebatch doctor` passes false: it looks and changes nothing.
   */
  migrate?: boolean;
}

/** What every service of nodebatch runs on: the database, the event log, the notifier and live streams. */
export interface Runtime {
  readonly config: NodebatchConfig;
  readonly pool: pg.Pool;
  readonly store: PostgresEventStore;
  /** Appends (with the transports' hooks) and hints; its `info` is served by /readyz and doctor. */
  readonly notifier: Notifier;
  readonly streams: ProgressStreams;
  /** Stops the notifier and ends the pool; safe to call twice. */
  close(): Promise<void>;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** The main database cannot be reached: nothing works without it, so the service does not start. */
export class DatabaseUnavailableError extends NodebatchError {
  readonly checklist: string[];

  constructor(message: string, checklist: string[], options?: { cause?: unknown }) {
    super('DATABASE_UNAVAILABLE', message, options);
    this.checklist = checklist;
  }
}

/**
 * Connects to the database, runs migrations, starts the notifier (configured
 * transport or polling fallback, with diagnostics) and the progress streams.
 */
export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config } = options;
  const logger = options.logger;
  const env = options.env ?? process.env;
  const connectionTimeoutMillis = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  // One key for the transports of the process: they sign what they send and check what they receive.
  // Made before any connection opens: a key too short is refused here, with nothing to close.
  const hintKey = config.progress.hintKey === undefined ? undefined : new HintKey(config.progress.hintKey);
  const poolConfig = { ...pgPoolConfig(config.database), connectionTimeoutMillis };
  const databaseTarget: ConnectionTarget = { service: 'postgres', ...describeDatabase(config.database) };
  const listenerDatabase = options.listenerDatabase ?? configuredListenerDatabase(config.database);
  const listenerTarget: ConnectionTarget = { service: 'postgres', ...describeDatabase(listenerDatabase) };
  const { max: _max, ...listenerConnection } = { ...pgPoolConfig(listenerDatabase), connectionTimeoutMillis };
  const pool = new pg.Pool(poolConfig);
  guardPoolErrors(pool, logger);

  try {
    await pool.query('SELECT 1');
  } catch (err) {
    const diagnosis = diagnoseConnectionError(err, databaseTarget, env);
    logger.error(
      {
        target: databaseTarget,
        code: diagnosis.code,
        error: diagnosis.message,
        checklist: diagnosis.checklist,
      },
      `cannot connect to the database: ${diagnosis.summary}`,
    );
    await pool.end().catch(() => undefined);
    throw new DatabaseUnavailableError(
      `cannot connect to the database: ${diagnosis.summary}`,
      diagnosis.checklist,
      {
        cause: err,
      },
    );
  }

  try {
    if (options.migrate !== false) await runMigrations(pool, { logger });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  const store = createEventStore({ pool, logger });

  const pollTransport = (): Transport =>
    createPollingTransport({ store, intervalMs: config.progress.pollIntervalMs, logger });

  const createTransport = (type: TransportType): Transport => {
    switch (type) {
      case 'postgres':
        return createPostgresTransport({
          pool,
          // The listener's own connection, never one of the pool: it is held for the life of the process.
          connection: { ...listenerConnection, application_name: 'nodebatch-listener' },
          store,
          logger,
          hintKey,
          combineTasks: config.progress.combinedHints,
          ...(options.postgresChannel ? { channel: options.postgresChannel } : {}),
          ...(options.listenerReconnect ? { reconnect: options.listenerReconnect } : {}),
        });
      case 'redis':
        if (!config.redis) {
          throw new TransportUnavailableError(
            'PROGRESS_NOTIFY_TYPE is redis but no Redis is configured (set REDIS_URL or REDIS_HOST)',
          );
        }
        return createRedisTransport({
          redis: redisOptions(config.redis),
          clusterNodes: redisClusterNodes(config.redis),
          store,
          logger,
          hintKey,
          combineTasks: config.progress.combinedHints,
          ...(options.redisChannel ? { channel: options.redisChannel } : {}),
        });
      case 'polling':
        return pollTransport();
    }
  };

  const targetOf = (type: TransportType): ConnectionTarget | undefined => {
    if (type === 'postgres') return listenerTarget;
    if (type === 'redis' && config.redis) return { service: 'redis', ...describeRedis(config.redis) };
    return undefined;
  };

  const notifier = createNotifier({
    configured: config.progress.notifyType,
    store,
    createTransport,
    pollTransport,
    describeTarget: (type) => ({ ...targetOf(type) }),
    diagnose: (err, type) => {
      const target = targetOf(type);
      if (!target) {
        return {
          code: 'NOT_CONFIGURED',
          summary: err instanceof Error ? err.message : String(err),
          checklist: [],
        };
      }
      return diagnoseConnectionError(err, target, env);
    },
    logger,
    fallbackAfterMs: config.progress.fallbackAfterMs,
    ...(options.notifierRetry ? { retry: options.notifierRetry } : {}),
  });
  try {
    await notifier.start();
  } catch (err) {
    await notifier.stop().catch(() => undefined);
    await pool.end().catch(() => undefined);
    throw err;
  }
  const streams = new ProgressStreams({ store, hints: notifier, logger });
  const retention =
    options.retention === false
      ? null
      : store.startRetentionJob({ olderThanMs: config.eventStore.retentionDays * 86_400_000, logger });

  let closing: Promise<void> | null = null;
  return {
    config,
    pool,
    store,
    notifier,
    streams,
    close() {
      closing ??= (async () => {
        await retention?.stop();
        await notifier.stop();
        await pool.end();
      })();
      return closing;
    },
  };
}

/**
 * A pooled connection whose server goes away emits 'error': on the pool while
 * idle, on the client itself while checked out (pg-pool removes its listener
 * then). Nobody listens on a checked-out client (the event store's query
 * builder does not), so a server restart in the middle of a transaction
 * would crash the process with an unhandled 'error' event. The query in
 * flight fails on its own and the pool drops the client; this only keeps
 * the process alive and says so once per outage.
 */
function guardPoolErrors(pool: pg.Pool, logger: Logger): void {
  let lastLogged = 0;
  const report = (err: Error) => {
    const now = Date.now();
    if (now - lastLogged < 60_000) return;
    lastLogged = now;
    logger.warn({ err }, 'a database connection was lost; the pool reconnects on demand');
  };
  pool.on('error', report);
  pool.on('connect', (client) => client.on('error', report));
}

import { randomUUID } from 'node:crypto';
import type { EventReader, Hint, StoredEvent, Transport, TransportHealth } from '@nodebatch/progress';
import {
  TransportUnavailableError,
  WatchCounts,
  describeError,
  probeRoundTrip,
  realScheduler,
  withTimeout,
} from '@nodebatch/progress';
import type { ScheduledTask, Scheduler } from '@nodebatch/progress';
import type { RedisOptions } from 'ioredis';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { BehaviorSubject, Subject, distinctUntilChanged } from 'rxjs';
import { decodeEnvelope, decodeEvents, encodeAppend, encodeProbe } from './wire-message.js';

/** Options of {@link createRedisTransport}. */
export interface RedisTransportOptions {
  /**
   * Where Redis is; used for both connections of the transport, named
   * `<connectionName>-subscriber` and `<connectionName>-publisher`
   * (connectionName defaults to `nodebatch-progress`).
   */
  redis: RedisOptions;
  /** The event log, read by the periodic position check. */
  store: EventReader;
  /** Pub/Sub channel. Default `nodebatch:progress`. */
  channel?: string;
  /**
   * Milliseconds between two position checks of all watched tasks (one query
   * each). Bounds how late a hint is when a PUBLISH was lost. Default 1000.
   */
  catchUpIntervalMs?: number;
  logger: Logger;
  /** Larger messages are sent as a reference to the store. Default 512 KiB. */
  maxPayloadBytes?: number;
  /** A PUBLISH not answered in this time counts as failed. Default 2000 ms. */
  publishTimeoutMs?: number;
  /** Clock and timers; default {@link realScheduler}. */
  scheduler?: Scheduler;
}

export const DEFAULT_REDIS_CHANNEL = 'nodebatch:progress';
export const DEFAULT_CATCH_UP_INTERVAL_MS = 1000;
export const DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024;

/** The Redis transport, with counters that say what it survived. */
export interface RedisTransport extends Transport {
  /**
   * PUBLISHes the events of a committed append. Never rejects: a failed
   * PUBLISH is counted and logged once per outage, and subscribers get the
   * events through their position check.
   */
  afterCommit(events: readonly StoredEvent[]): Promise<void>;
  /** Messages on the channel that were not ours or not valid; each was ignored. */
  readonly malformedMessages: number;
  /** PUBLISHes that failed after their append committed; the position check covered them. */
  readonly failedPublishes: number;
}

type ConnectionName = 'subscriber' | 'publisher';

interface ConnectionState {
  up: boolean;
  lastError: string | null;
}

/**
 * Redis Pub/Sub transport: one publisher and ONE subscriber connection per
 * process, shared by every watched task (invariant 5, docs/invariants.md). Events are published
 * after their append committed; because a PUBLISH can fail after the commit,
 * a position check reads the latest seq of every watched task from the store
 * (one query per interval for all of them) and hints what Pub/Sub did not.
 */
export function createRedisTransport(options: RedisTransportOptions): RedisTransport {
  const { store } = options;
  const channel = options.channel ?? DEFAULT_REDIS_CHANNEL;
  const catchUpIntervalMs = options.catchUpIntervalMs ?? DEFAULT_CATCH_UP_INTERVAL_MS;
  const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const publishTimeoutMs = options.publishTimeoutMs ?? 2000;
  const scheduler = options.scheduler ?? realScheduler;
  const target = describeTarget(options.redis);
  const logger = options.logger.child({ transport: 'redis', redis: target, channel });
  if (!(catchUpIntervalMs > 0)) {
    throw new RangeError(
      `catchUpIntervalMs must be a positive number of milliseconds, got ${catchUpIntervalMs}`,
    );
  }

  // The transport subscribes itself on every 'ready', so it knows when the
  // subscription is back and can tell subscribers to catch up after it.
  // Named by role, so CLIENT LIST shows which connection is which.
  const connectionName = options.redis.connectionName ?? 'nodebatch-progress';
  const subscriber = new Redis({
    ...options.redis,
    connectionName: `${connectionName}-subscriber`,
    lazyConnect: true,
    autoResubscribe: false,
  });
  // No offline queue: a PUBLISH while Redis is away fails at once instead of
  // holding the producer; the position check delivers that append.
  const publisher = new Redis({
    commandTimeout: publishTimeoutMs,
    ...options.redis,
    connectionName: `${connectionName}-publisher`,
    lazyConnect: true,
    enableOfflineQueue: false,
  });

  const watches = new WatchCounts();
  /** The highest seq hinted per watched task; the position check hints what lies beyond. */
  const announced = new Map<string, number>();
  const pendingProbes = new Map<string, () => void>();
  const hints$ = new Subject<Hint>();
  const resync$ = new Subject<void>();
  const healthState$ = new BehaviorSubject<TransportHealth>({ healthy: false, reason: 'not started' });
  const health$ = healthState$.pipe(
    distinctUntilChanged((a, b) => a.healthy === b.healthy && a.reason === b.reason),
  );
  const connections: Record<ConnectionName, ConnectionState> = {
    subscriber: { up: false, lastError: null },
    publisher: { up: false, lastError: null },
  };

  let state: 'new' | 'starting' | 'started' | 'stopped' = 'new';
  let malformedMessages = 0;
  let failedPublishes = 0;
  let publishFailing = false;
  let storeFailing = false;
  let checkTimer: ScheduledTask | null = null;
  let checking: Promise<void> | null = null;

  function updateHealth(): void {
    if (state !== 'started') return;
    const down = (['subscriber', 'publisher'] as const).filter((name) => !connections[name].up);
    const previous = healthState$.value;
    if (down.length === 0) {
      healthState$.next({ healthy: true, reason: null });
      if (!previous.healthy) logger.info('redis transport connected again');
      return;
    }
    const reason = down
      .map(
        (name) =>
          `redis ${name} connection to ${target} is down: ${connections[name].lastError ?? 'connection closed'}`,
      )
      .join('; ');
    healthState$.next({ healthy: false, reason });
    if (previous.healthy) logger.warn({ reason }, 'redis transport lost its connection; reconnecting');
  }

  function announce(taskId: string, seq: number): void {
    if ((announced.get(taskId) ?? 0) < seq) announced.set(taskId, seq);
  }

  function malformed(message: string, problem: string): void {
    malformedMessages++;
    // Logged once: a program that floods the channel must not flood the log.
    if (malformedMessages === 1) {
      logger.warn(
        { bytes: Buffer.byteLength(message), problem: problem.slice(0, 500) },
        'ignored a malformed message on the progress channel; further ones are only counted',
      );
    }
  }

  function onMessage(message: string): void {
    const envelope = decodeEnvelope(message);
    if (!envelope.ok) return malformed(message, envelope.problem);
    const value = envelope.value;
    switch (value.kind) {
      case 'probe':
        pendingProbes.get(value.id)?.();
        return;
      case 'ref':
        if (!watches.has(value.taskId)) return;
        announce(value.taskId, value.seq);
        hints$.next({ taskId: value.taskId, seq: value.seq });
        return;
      case 'events': {
        if (!watches.has(value.taskId)) return;
        const events = decodeEvents(value);
        if (!events.ok) return malformed(message, events.problem);
        announce(value.taskId, value.seq);
        hints$.next({ taskId: value.taskId, seq: value.seq, events: events.value });
        return;
      }
    }
  }

  async function subscribe(): Promise<void> {
    await subscriber.subscribe(channel);
    connections.subscriber.up = true;
  }

  subscriber.on('message', (from: string, message: string) => {
    if (from === channel) onMessage(message);
  });
  for (const [name, connection] of [
    ['subscriber', subscriber],
    ['publisher', publisher],
  ] as const) {
    connection.on('error', (err: Error) => {
      connections[name].lastError = describeError(err);
    });
    connection.on('close', () => {
      connections[name].up = false;
      updateHealth();
    });
  }
  publisher.on('ready', () => {
    connections.publisher.up = true;
    connections.publisher.lastError = null;
    updateHealth();
  });
  subscriber.on('ready', () => {
    if (state !== 'started') return; // start() subscribes the first time
    connections.subscriber.lastError = null;
    subscribe().then(
      () => {
        logger.info('redis subscriber resubscribed; subscribers catch up from the store');
        updateHealth();
        // Messages published while the subscription was away are gone: read them from the log.
        resync$.next();
      },
      (err: unknown) => {
        // The connection dropped again; the next 'ready' subscribes again.
        connections.subscriber.lastError = describeError(err);
      },
    );
  });

  async function checkPositions(): Promise<void> {
    if (watches.size === 0) return;
    const taskIds = watches.taskIds();
    let latest: Map<string, number>;
    try {
      latest = await store.latestSeqs(taskIds);
    } catch (err) {
      if (!storeFailing) logger.warn({ err }, 'position check failed: the event store query failed');
      storeFailing = true;
      return;
    }
    if (storeFailing) logger.info('position check works again');
    storeFailing = false;
    for (const [taskId, seq] of latest) {
      if (!watches.has(taskId) || seq <= (announced.get(taskId) ?? 0)) continue;
      announced.set(taskId, seq);
      hints$.next({ taskId, seq });
    }
  }

  function scheduleCheck(): void {
    if (state !== 'started') return;
    checkTimer = scheduler.schedule(() => {
      checkTimer = null;
      checking = checkPositions().finally(() => {
        checking = null;
        scheduleCheck();
      });
    }, catchUpIntervalMs);
  }

  async function disconnectAll(): Promise<void> {
    await Promise.all([close(subscriber), close(publisher)]);
  }

  return {
    type: 'redis',
    hints$: hints$.asObservable(),
    resync$: resync$.asObservable(),
    health$,
    get malformedMessages() {
      return malformedMessages;
    },
    get failedPublishes() {
      return failedPublishes;
    },

    watch(taskId) {
      watches.add(taskId);
    },
    unwatch(taskId) {
      if (watches.remove(taskId)) announced.delete(taskId);
    },

    async start() {
      if (state === 'stopped')
        throw new TransportUnavailableError('the redis transport was stopped; create a new one');
      if (state !== 'new') return;
      state = 'starting';
      try {
        await Promise.all([subscriber.connect(), publisher.connect()]);
        await subscribe();
      } catch (err) {
        state = 'new';
        // No reconnect loop behind a transport that failed to start.
        await disconnectAll();
        const cause =
          connections.subscriber.lastError ?? connections.publisher.lastError ?? describeError(err);
        healthState$.next({ healthy: false, reason: `redis at ${target} unavailable: ${cause}` });
        throw new TransportUnavailableError(`redis transport cannot connect to ${target}: ${cause}`, {
          cause: err,
        });
      }
      state = 'started';
      connections.publisher.up = publisher.status === 'ready';
      updateHealth();
      logger.debug({ catchUpIntervalMs }, 'redis transport started');
      scheduleCheck();
    },

    async afterCommit(events: readonly StoredEvent[]) {
      if (state === 'stopped' || events.length === 0) return;
      try {
        for (const message of encodeAppend(events, maxPayloadBytes))
          await publisher.publish(channel, message);
        if (publishFailing) logger.info('publishing to redis works again');
        publishFailing = false;
      } catch (err) {
        // The append committed; subscribers get it from their position check.
        failedPublishes++;
        if (!publishFailing) {
          logger.warn({ err }, 'PUBLISH failed after commit; subscribers catch up by their position check');
        }
        publishFailing = true;
      }
    },

    async probe(timeoutMs) {
      const id = randomUUID();
      try {
        return await probeRoundTrip({
          scheduler,
          timeoutMs,
          timeoutError: () =>
            new TransportUnavailableError(
              `redis probe on channel ${channel} at ${target} did not come back within ${timeoutMs} ms`,
            ),
          send: () =>
            new Promise<void>((resolve, reject) => {
              pendingProbes.set(id, resolve);
              publisher.publish(channel, encodeProbe(id)).then(
                () => undefined,
                (err: unknown) =>
                  reject(
                    new TransportUnavailableError(
                      `redis probe could not be published to ${target}: ${describeError(err)}`,
                      {
                        cause: err,
                      },
                    ),
                  ),
              );
            }),
        });
      } finally {
        pendingProbes.delete(id);
      }
    },

    async stop() {
      if (state === 'stopped') return;
      state = 'stopped';
      checkTimer?.cancel();
      checkTimer = null;
      await checking;
      await disconnectAll();
      hints$.complete();
      resync$.complete();
      healthState$.next({ healthy: false, reason: 'stopped' });
      healthState$.complete();
    },
  };
}

/**
 * QUIT when connected, so the server has let go of the connection when stop()
 * resolves; a server that does not answer within a second is just dropped.
 */
async function close(connection: Redis): Promise<void> {
  if (connection.status === 'ready') {
    const quitted = await withTimeout(connection.quit(), 1000, 'QUIT').then(
      () => true,
      () => false,
    );
    if (quitted) return;
  }
  connection.disconnect();
}

/** host:port (or socket path) of the options; never the password. */
function describeTarget(redis: RedisOptions): string {
  if (redis.path) return redis.path;
  return `${redis.host ?? 'localhost'}:${redis.port ?? 6379}`;
}

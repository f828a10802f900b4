import { randomUUID } from 'node:crypto';
import type {
  EventReader,
  Hint,
  HintKey,
  StoredEvent,
  Transport,
  TransportHealth,
} from '@nodebatch/progress';
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
import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { BehaviorSubject, Subject, distinctUntilChanged } from 'rxjs';
import {
  decodeEnvelope,
  decodeEvents,
  decodeTaskEnvelope,
  encodeAppend,
  encodeProbe,
  type TaskEnvelope,
} from './wire-message.js';

/** Options of {@link createRedisTransport}. */
export interface RedisTransportOptions {
  /**
   * Where Redis is; used for both connections of the transport, named
   * `<connectionName>-subscriber` and `<connectionName>-publisher`
   * (connectionName defaults to `nodebatch-progress`).
   */
  redis: RedisOptions;
  /**
   * Seed nodes of a Redis Cluster. When given, `redis` holds only what each
   * node's connection needs (credentials, TLS): the publisher is ioredis'
   * Cluster client, and the subscriber a connection to the master owning the
   * channel's slot, using sharded Pub/Sub (SSUBSCRIBE/SPUBLISH, Redis 7+) when
   * the cluster has it, so a hint stays within one shard.
   */
  clusterNodes?: readonly { host: string; port: number }[];
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
  /**
   * Announce the tasks of one append transaction in one PUBLISH (as many as
   * fit in `maxPayloadBytes`) instead of one PUBLISH per task
   * (PROGRESS_COMBINED_HINTS). Receivers of every version since combined
   * messages exist read them; older ones ignore them as malformed, so this is
   * turned on once every process is upgraded. Default false.
   */
  combineTasks?: boolean;
  /** A PUBLISH not answered in this time counts as failed. Default 2000 ms. */
  publishTimeoutMs?: number;
  /** Clock and timers; default {@link realScheduler}. */
  scheduler?: Scheduler;
  /**
   * The hint key (PROGRESS_HINT_KEY) shared by every process that sends or
   * receives hints: messages published carry a MAC of their events, and the
   * events of received ones whose MAC verifies reach subscribers without a
   * log read (Hint.authentication). Default none: nothing signed, every
   * inline event checked against the log.
   */
  hintKey?: HintKey | undefined;
}

export const DEFAULT_REDIS_CHANNEL = 'nodebatch:progress';
export const DEFAULT_CATCH_UP_INTERVAL_MS = 1000;
export const DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024;
/** How long start() waits for a Redis Cluster to be ready, unless `redis.connectTimeout` says otherwise. */
const DEFAULT_CLUSTER_START_TIMEOUT_MS = 10_000;

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
  /**
   * `sharded` (SPUBLISH/SSUBSCRIBE on a cluster that has them), `classic`
   * (PUBLISH/SUBSCRIBE), or null before start().
   */
  readonly pubsub: PubSubKind | null;
}

/** Which Pub/Sub the transport uses; see {@link RedisTransport.pubsub}. */
export type PubSubKind = 'sharded' | 'classic';

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
  const clusterNodes = options.clusterNodes ?? [];
  const hintKey = options.hintKey;
  const combineTasks = options.combineTasks ?? false;
  const inCluster = clusterNodes.length > 0;
  const target = inCluster
    ? `cluster ${clusterNodes.map((node) => `${node.host}:${node.port}`).join(',')}`
    : describeTarget(options.redis);
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
  // No offline queue: a PUBLISH while Redis is away fails at once instead of
  // holding the producer; the position check delivers that append.
  const publisher: Redis | Cluster = inCluster
    ? new Cluster([...clusterNodes], {
        lazyConnect: true,
        enableOfflineQueue: false,
        // Reconnects a node's connection when its master restarts on the same address.
        clusterNodeRetryStrategy: (times) => Math.min(times * 100, 2000),
        redisOptions: {
          commandTimeout: publishTimeoutMs,
          ...clusterNodeOptions(options.redis),
          connectionName: `${connectionName}-publisher`,
        },
      })
    : new Redis({
        commandTimeout: publishTimeoutMs,
        ...options.redis,
        connectionName: `${connectionName}-publisher`,
        lazyConnect: true,
        enableOfflineQueue: false,
      });
  /** The channel's slot and whether it is sharded; found by start() in a cluster. */
  let pubsub: PubSubKind | null = inCluster ? null : 'classic';
  let channelSlot = -1;
  /** host:port the subscriber dials in a cluster: the master of the channel's slot. */
  let subscriberAddress: string | null = null;
  let subscriber = inCluster ? null : openSubscriber(options.redis);

  /**
   * The one subscriber connection. The transport subscribes itself on every
   * 'ready', so it knows when the subscription is back and can tell
   * subscribers to catch up after it. Named by role, so CLIENT LIST shows
   * which connection is which.
   */
  function openSubscriber(redis: RedisOptions): Redis {
    const connection = new Redis({
      ...redis,
      connectionName: `${connectionName}-subscriber`,
      lazyConnect: true,
      autoResubscribe: false,
    });
    connection.on('message', (from: string, message: string) => {
      if (from === channel) onMessage(message);
    });
    connection.on('smessage', (from: string, message: string) => {
      if (from === channel) onMessage(message);
    });
    connection.on('error', (err: Error) => {
      connections.subscriber.lastError = describeError(err);
    });
    connection.on('close', () => {
      if (connection !== subscriber) return;
      connections.subscriber.up = false;
      updateHealth();
    });
    connection.on('ready', () => {
      if (state !== 'started' || connection !== subscriber) return; // start() subscribes the first time
      connections.subscriber.lastError = null;
      resubscribe();
    });
    return connection;
  }

  /** Subscribes again after a reconnect. */
  function resubscribe(): void {
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
  }

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
      case 'tasks':
        for (const json of value.tasks) {
          const task = decodeTaskEnvelope(json);
          if (task.ok) onTask(message, task.value);
          else malformed(message, task.problem);
        }
        return;
      default:
        onTask(message, value);
    }
  }

  /** One task's part of a message: its events, or a reference to the log. */
  function onTask(message: string, value: TaskEnvelope): void {
    switch (value.kind) {
      case 'ref':
        if (!watches.has(value.taskId)) return;
        announce(value.taskId, value.seq);
        hints$.next({ taskId: value.taskId, seq: value.seq });
        return;
      case 'events': {
        if (!watches.has(value.taskId)) return;
        const events = decodeEvents(value);
        if (!events.ok) return malformed(message, events.problem);
        const signed = { taskId: value.taskId, seq: value.seq, events: events.value };
        announce(signed.taskId, signed.seq);
        // One HMAC per message, for every subscriber of the process.
        hints$.next(
          hintKey ? { ...signed, authentication: hintKey.authenticate(signed, value.mac) } : signed,
        );
        return;
      }
    }
  }

  async function subscribe(): Promise<void> {
    if (!subscriber) throw new TransportUnavailableError('the redis subscriber is not open');
    if (pubsub === 'sharded') await subscriber.ssubscribe(channel);
    else await subscriber.subscribe(channel);
    connections.subscriber.up = true;
  }

  /**
   * In a cluster: dials the master that owns the channel's slot now (after a
   * failover or a resharding it is another node), as the publisher's slot
   * table says. Called at start and by the periodic check while the
   * subscriber is down.
   */
  function followSlotOwner(): void {
    if (!inCluster || channelSlot < 0 || state === 'stopped') return;
    const owner = (publisher as Cluster).slots[channelSlot]?.[0];
    if (owner === undefined || owner === subscriberAddress) return;
    const previous = subscriber;
    const at = owner.lastIndexOf(':');
    subscriberAddress = owner;
    subscriber = openSubscriber({
      ...clusterNodeOptions(options.redis),
      host: owner.slice(0, at),
      port: Number(owner.slice(at + 1)),
    });
    if (previous) {
      logger.info({ node: owner }, 'the progress channel moved to another redis node; subscribing there');
      previous.disconnect();
      subscriber.connect().catch((err: unknown) => {
        connections.subscriber.lastError = describeError(err);
      });
    }
  }

  for (const [name, connection] of [['publisher', publisher]] as const) {
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

  async function checkPositions(): Promise<void> {
    if (!connections.subscriber.up) followSlotOwner();
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

  async function publish(message: string): Promise<unknown> {
    return pubsub === 'sharded' ? publisher.spublish(channel, message) : publisher.publish(channel, message);
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
    await Promise.all([subscriber ? close(subscriber) : undefined, close(publisher)]);
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
    get pubsub() {
      return pubsub;
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
        if (inCluster) {
          // The Cluster client keeps waiting for cluster_state:ok; a cluster that is down must not hold start() forever.
          const startTimeoutMs = options.redis.connectTimeout ?? DEFAULT_CLUSTER_START_TIMEOUT_MS;
          await withTimeout(publisher.connect(), startTimeoutMs, () =>
            connections.publisher.lastError
              ? new Error(connections.publisher.lastError)
              : new Error(`the cluster did not become ready (cluster_state:ok) within ${startTimeoutMs} ms`),
          );
          pubsub = (await supportsShardedPubSub(publisher)) ? 'sharded' : 'classic';
          channelSlot = Number(await publisher.call('CLUSTER', 'KEYSLOT', channel));
          followSlotOwner();
          if (!subscriber) throw new Error(`no redis node owns slot ${channelSlot} of channel ${channel}`);
          await subscriber.connect();
        } else {
          await Promise.all([subscriber!.connect(), publisher.connect()]);
        }
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
      if (inCluster) {
        logger.info(
          { pubsub, node: subscriberAddress, slot: channelSlot },
          pubsub === 'sharded'
            ? 'redis transport started on a Redis Cluster with sharded Pub/Sub (SPUBLISH/SSUBSCRIBE)'
            : 'redis transport started on a Redis Cluster with classic Pub/Sub: the cluster has no SPUBLISH (Redis before 7), so every hint goes to every node',
        );
      }
      logger.debug({ catchUpIntervalMs, pubsub }, 'redis transport started');
      scheduleCheck();
    },

    async afterCommit(events: readonly StoredEvent[]) {
      if (state === 'stopped' || events.length === 0) return;
      try {
        for (const message of encodeAppend(events, {
          maxBytes: maxPayloadBytes,
          key: hintKey,
          combine: combineTasks,
        }))
          await publish(message);
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
              publish(encodeProbe(id)).then(
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
async function close(connection: Redis | Cluster): Promise<void> {
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

/**
 * True when the server (a node of the cluster) knows SPUBLISH: Redis 7 and
 * later. COMMAND INFO answers an unknown command with a nil entry.
 */
export async function supportsShardedPubSub(client: Redis | Cluster): Promise<boolean> {
  const info = (await client.call('COMMAND', 'INFO', 'SPUBLISH')) as unknown[];
  return Array.isArray(info) && Array.isArray(info[0]);
}

/** What each node's connection of a cluster takes from `redis`: not its address or database. */
function clusterNodeOptions(redis: RedisOptions): RedisOptions {
  const { host: _host, port: _port, path: _path, db: _db, ...rest } = redis;
  return rest;
}

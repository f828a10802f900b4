import type { NodebatchConfig } from '@nodebatch/config';
import {
  createRedisClient,
  describeDatabase,
  describeRedis,
  listenerDatabase,
  pgPoolConfig,
  redisMode,
  redisOptions,
} from '@nodebatch/config';
import type { PostgresPoolConfig, RedisOptions } from 'bullmq';
import type { Cluster } from 'ioredis';

/** Where batch jobs are kept: Redis when it is configured, otherwise BullMQ's PostgreSQL backend. */
export type QueueBackendKind = 'redis' | 'postgres';

export function queueBackendKind(config: NodebatchConfig): QueueBackendKind {
  return config.redis ? 'redis' : 'postgres';
}

/**
 * The queue of a cluster's batches. Each named cluster (`cluster.clusters`)
 * has its own queue, `<queue.name>-<cluster>`, so a worker takes jobs only
 * from the queues of the clusters it has credentials for, with BullMQ's
 * locks, retries and stall recovery unchanged; without a list, the one
 * cluster's queue is `queue.name` itself. `cluster` absent: `queue.name`.
 */
export function batchQueueName(config: NodebatchConfig, cluster?: string): string {
  return cluster === undefined || !config.cluster.clusters
    ? config.queue.name
    : `${config.queue.name}-${cluster}`;
}

/** Where the queue lives, for logs and diagnostics; never includes a password. */
export function describeQueueBackend(
  config: NodebatchConfig,
  queue = config.queue.name,
): Record<string, unknown> {
  return config.redis
    ? { backend: 'redis', queue, ...describeRedis(config.redis) }
    : {
        backend: 'postgres',
        queue,
        ...describeDatabase(listenerDatabase(config.database)),
      };
}

/**
 * ioredis options for BullMQ. Consumers block on Redis, so BullMQ requires
 * `maxRetriesPerRequest: null` for them (commands wait for a reconnect); a
 * producer answers an HTTP request, so its commands fail after a few
 * reconnect attempts instead of hanging.
 */
export function queueRedisOptions(
  redis: NonNullable<NodebatchConfig['redis']>,
  role: 'producer' | 'consumer',
): RedisOptions {
  // ioredis 6 allows `retryStrategy: null` (never reconnect), BullMQ's type does not: keep only a function.
  const { retryStrategy, ...options } = redisOptions(redis);
  return {
    ...options,
    ...(typeof retryStrategy === 'function' && { retryStrategy }),
    maxRetriesPerRequest: role === 'consumer' ? null : 2,
  };
}

/**
 * BullMQ's key prefix on Redis (the PostgreSQL backend uses its own schema
 * instead). On a Redis Cluster it is a hash tag, `{nodebatch}`, so every key
 * of the queue is in one slot: BullMQ's Lua scripts touch several keys at
 * once, which a cluster allows only within one slot.
 */
export function queueRedisPrefix(redis: NonNullable<NodebatchConfig['redis']>): string {
  return redisMode(redis) === 'cluster' ? `{${QUEUE_REDIS_PREFIX}}` : QUEUE_REDIS_PREFIX;
}

/** The prefix on a single Redis server; see {@link queueRedisPrefix}. */
export const QUEUE_REDIS_PREFIX = 'nodebatch';

/**
 * What BullMQ connects with: options for a single server (BullMQ opens and
 * closes its connections), or for a Redis Cluster a Cluster client that the
 * caller closes after the queue or worker, as BullMQ leaves a client it was
 * given open.
 */
export function queueRedisConnection(
  redis: NonNullable<NodebatchConfig['redis']>,
  role: 'producer' | 'consumer',
): { connection: RedisOptions } | { connection: Cluster; cluster: Cluster } {
  const options = queueRedisOptions(redis, role);
  if (redisMode(redis) === 'single') return { connection: options };
  const cluster = createRedisClient(redis, options) as Cluster;
  return { connection: cluster, cluster };
}

/** The PostgreSQL schema BullMQ's backend keeps its tables in. */
export const QUEUE_POSTGRES_SCHEMA = 'bullmq';

/**
 * node-postgres pool config for BullMQ's PostgreSQL backend. `migrate: true`
 * makes the first connection bring BullMQ's own schema (`bullmq`) up to date
 * under its advisory lock, so any number of workers may start at once.
 *
 * It dials where the LISTEN connection does (DB_LISTEN_*, else the pool's
 * address): the backend LISTENs for new jobs and pins its schema with a
 * startup parameter, neither of which survives a pooler in transaction mode.
 */
export function queuePostgresOptions(
  database: NodebatchConfig['database'],
  poolMax: number,
  migrate = true,
): PostgresPoolConfig {
  const direct = listenerDatabase(database);
  return {
    ...pgPoolConfig(direct),
    password: direct.password ?? '',
    max: poolMax,
    application_name: 'nodebatch-queue',
    migrate,
  };
}

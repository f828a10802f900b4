import type { NodebatchConfig } from '@nodebatch/config';
import {
  describeDatabase,
  describeRedis,
  listenerDatabase,
  pgPoolConfig,
  redisOptions,
} from '@nodebatch/config';
import type { PostgresPoolConfig, RedisOptions } from 'bullmq';

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

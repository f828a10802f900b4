import type { ClusterOptions, RedisOptions } from 'ioredis';
import { Cluster, Redis } from 'ioredis';
import type { RedisClusterNode, RedisConfig } from './nodebatch-config.js';

/** `single`: one server (REDIS_URL / REDIS_HOST); `cluster`: a Redis Cluster (REDIS_CLUSTER_NODES). */
export type RedisMode = 'single' | 'cluster';

/** What may be shown about a Redis connection: everything but the password. */
export interface RedisDescription {
  mode: RedisMode;
  /** The server, or the first seed node of a cluster. */
  host: string;
  port: number;
  /** Every seed node of a cluster, as host:port. */
  nodes?: string[];
  db: number;
  username?: string;
  tls: boolean;
  passwordSet: boolean;
}

export function redisMode(redis: RedisConfig): RedisMode {
  return redis.clusterNodes && redis.clusterNodes.length > 0 ? 'cluster' : 'single';
}

/**
 * ioredis options for the configured Redis; callers add their own retry and
 * BullMQ settings. For a cluster they are the options of each node's
 * connection: the addresses come from {@link redisClusterNodes}.
 */
export function redisOptions(redis: RedisConfig): RedisOptions {
  return {
    host: redis.host,
    port: redis.port,
    db: redis.db,
    ...(redis.username !== undefined ? { username: redis.username } : {}),
    ...(redis.password !== undefined ? { password: redis.password } : {}),
    ...(redis.tls ? { tls: {} } : {}),
  };
}

/** The seed nodes of a cluster; empty for a single server. */
export function redisClusterNodes(redis: RedisConfig): RedisClusterNode[] {
  return redis.clusterNodes?.map((node) => ({ host: node.host, port: node.port })) ?? [];
}

/** Options that only a client of a Redis Cluster takes; see {@link createRedisClient}. */
export type RedisClusterClientOptions = Omit<ClusterOptions, 'redisOptions'>;

/**
 * A client of the configured Redis: ioredis' Cluster client for a cluster,
 * else a single connection. `options` are per connection (a cluster gives
 * them to the connection of each node, minus host and port); `cluster` is
 * used only for a cluster.
 */
export function createRedisClient(
  redis: RedisConfig,
  options: RedisOptions = {},
  cluster: RedisClusterClientOptions = {},
): Redis | Cluster {
  const nodes = redisClusterNodes(redis);
  if (nodes.length === 0) return new Redis({ ...redisOptions(redis), ...options });
  const {
    host: _host,
    port: _port,
    db: _db,
    retryStrategy,
    enableOfflineQueue,
    lazyConnect,
    ...perNode
  } = { ...redisOptions(redis), ...options };
  return new Cluster(nodes, {
    // ioredis does not reconnect a node's connection by default: after a master
    // restarts on its address, a command queued for it (a BullMQ worker waits
    // without limit) would wait forever.
    clusterNodeRetryStrategy: (times) => Math.min(times * 100, 2000),
    // What a single connection sets for itself is the whole client's setting in a cluster.
    ...(typeof retryStrategy === 'function' ? { clusterRetryStrategy: retryStrategy } : {}),
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    ...cluster,
    // Each node's connection gets the rest; the addresses come from the cluster itself.
    redisOptions: perNode,
  });
}

export function describeRedis(redis: RedisConfig): RedisDescription {
  const nodes = redisClusterNodes(redis);
  const first = nodes[0];
  return {
    mode: redisMode(redis),
    host: first?.host ?? redis.host,
    port: first?.port ?? redis.port,
    ...(first ? { nodes: nodes.map((node) => `${node.host}:${node.port}`) } : {}),
    db: redis.db,
    ...(redis.username !== undefined ? { username: redis.username } : {}),
    tls: redis.tls ?? false,
    passwordSet: redis.password !== undefined,
  };
}

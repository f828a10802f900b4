import type { Cluster } from 'ioredis';
import { createRedisClient, describeRedis, redisMode, type RedisConfig } from '@nodebatch/config';
import { supportsShardedPubSub, type ConnectionTarget } from '@nodebatch/runtime';
import { CheckFailure } from './doctor-check.js';

/**
 * The `redis` check of doctor: connects as the service does (one server, or
 * ioredis' Cluster client for REDIS_CLUSTER_NODES) and says which mode it
 * found. For a cluster it also says whether the cluster is serving every slot
 * and which Pub/Sub the Redis transport uses there.
 */
export async function checkRedis(
  redis: RedisConfig,
  timeoutMs: number,
  diagnosed: (err: unknown, target: ConnectionTarget) => Error,
): Promise<string> {
  const description = describeRedis(redis);
  const target: ConnectionTarget = { service: 'redis', ...description };
  const mode = redisMode(redis);
  const client = createRedisClient(
    redis,
    { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null },
    // One attempt: doctor reports, it does not wait for a cluster to come back.
    { clusterRetryStrategy: () => null, slotsRefreshTimeout: timeoutMs },
  );
  client.on('error', () => undefined);
  try {
    await client.connect();
    const started = performance.now();
    await client.ping();
    const ping = Math.round(performance.now() - started);
    const server = parseInfo(await client.info('server'));
    const version = server.redis_version ?? '?';
    if (mode === 'single') {
      const where = `${target.host}:${target.port}`;
      if (server.redis_mode === 'cluster') {
        throw new CheckFailure(
          `Redis at ${where} is a node of a Redis Cluster, but nodebatch is configured for a single server`,
          ['Set REDIS_CLUSTER_NODES to the cluster’s nodes (host:port,host:port,...).'],
        );
      }
      return `Redis ${version} (single) at ${where} db ${redis.db}, PING ${ping} ms`;
    }
    return await describeCluster(client as Cluster, version, ping);
  } catch (err) {
    if (err instanceof CheckFailure) throw err;
    if (mode === 'cluster' && /cluster support disabled/i.test(String((err as Error).message))) {
      throw new CheckFailure(
        `REDIS_CLUSTER_NODES points at ${description.nodes?.join(',') ?? target.host}, which is a single Redis server, not a cluster`,
        ['Use REDIS_URL (or REDIS_HOST / REDIS_PORT) for a single server, and unset REDIS_CLUSTER_NODES.'],
        { cause: err },
      );
    }
    throw diagnosed(err, target);
  } finally {
    client.disconnect();
  }
}

async function describeCluster(cluster: Cluster, version: string, ping: number): Promise<string> {
  const info = parseInfo(String(await cluster.call('CLUSTER', 'INFO')));
  const masters = cluster.nodes('master').length;
  if (info.cluster_state !== 'ok') {
    throw new CheckFailure(
      `Redis Cluster state is ${info.cluster_state ?? 'unknown'}: ${info.cluster_slots_ok ?? '?'} of 16384 slots are served`,
      [
        'Is every master running? (redis-cli --cluster check <host:port>)',
        'While a master is down the cluster refuses commands: the queue waits and progress comes by polling.',
      ],
    );
  }
  const pubsub = (await supportsShardedPubSub(cluster))
    ? 'sharded Pub/Sub (SPUBLISH/SSUBSCRIBE)'
    : 'classic Pub/Sub: no SPUBLISH before Redis 7, so every hint goes to every node';
  return `Redis ${version} (cluster) with ${masters} master${masters === 1 ? '' : 's'}, state ok; progress hints use ${pubsub}; PING ${ping} ms`;
}

/** `key:value` lines of Redis INFO or CLUSTER INFO. */
function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}

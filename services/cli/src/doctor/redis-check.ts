import type { Cluster } from 'ioredis';
import { createRedisClient, describeRedis, redisMode, type RedisConfig } from '@nodebatch/config';
import { supportsShardedPubSub, type ConnectionTarget } from '@nodebatch/runtime';
import { describeError, withTimeout } from '@nodebatch/progress';
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
    // A few quick attempts (with none, ioredis ends without settling connect()
    // when a seed node is down); doctor reports, it does not wait for a cluster to come back.
    // No ready check: the client would wait for cluster_state:ok, and doctor is to say which master is not.
    {
      clusterRetryStrategy: (times) => (times <= 3 ? 100 : null),
      slotsRefreshTimeout: timeoutMs,
      enableReadyCheck: false,
    },
  );
  // The Cluster client rejects connect() with "None of startup nodes is available"; the nodes' own answer comes as an 'error' event.
  let lastError: (Error & { lastNodeError?: Error }) | undefined;
  client.on('error', (err: Error) => (lastError = err));
  try {
    await withTimeout(client.connect(), timeoutMs, () => new Error(`no connection within ${timeoutMs} ms`));
    if (mode === 'cluster') return await describeCluster(client as Cluster, timeoutMs);
    const started = performance.now();
    await client.ping();
    const ping = Math.round(performance.now() - started);
    const server = parseInfo(await client.info('server'));
    const where = `${target.host}:${target.port}`;
    if (server.redis_mode === 'cluster') {
      throw new CheckFailure(
        `Redis at ${where} is a node of a Redis Cluster, but nodebatch is configured for a single server`,
        ['Set REDIS_CLUSTER_NODES to the cluster’s nodes (host:port,host:port,...).'],
      );
    }
    return `Redis ${server.redis_version ?? '?'} (single) at ${where} db ${redis.db}, PING ${ping} ms`;
  } catch (err) {
    if (err instanceof CheckFailure) throw err;
    const answer = `${(err as Error).message} ${lastError?.message ?? ''} ${lastError?.lastNodeError?.message ?? ''}`;
    if (mode === 'cluster' && /cluster support disabled/i.test(answer)) {
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

/**
 * Asks every master of the slot table on its own connection, each within
 * `timeoutMs`: a command the Cluster client routes to a master that is down
 * would wait for it instead of failing.
 */
async function describeCluster(cluster: Cluster, timeoutMs: number): Promise<string> {
  const masters = cluster.nodes('master');
  // A master whose connection ended has left the client's pool but may still own slots.
  const connected = new Set(masters.map((node) => `${node.options.host}:${node.options.port}`));
  const missing = [...new Set(cluster.slots.map((owners) => owners[0]))].filter(
    (owner): owner is string => owner !== undefined && !connected.has(owner),
  );
  const answers = await Promise.all(
    masters.map(async (node) => {
      const where = `${node.options.host}:${node.options.port}`;
      try {
        return await withTimeout(
          (async () => {
            const started = performance.now();
            await node.ping();
            const ping = Math.round(performance.now() - started);
            const info = parseInfo(String(await node.call('CLUSTER', 'INFO')));
            return { where, ping, state: info.cluster_state ?? 'unknown', node };
          })(),
          timeoutMs,
          `no answer within ${timeoutMs} ms`,
        );
      } catch (err) {
        return { where, ping: -1, state: `unreachable (${describeError(err)})`, node };
      }
    }),
  );
  const failing = [
    ...missing.map((owner) => `${owner} unreachable (serves slots, not connected)`),
    ...answers.filter((answer) => answer.state !== 'ok').map((answer) => `${answer.where} ${answer.state}`),
  ];
  if (failing.length > 0) {
    throw new CheckFailure(`Redis Cluster is not ok: ${failing.join('; ')}`, [
      'Is every master running? (redis-cli --cluster check <host:port>)',
      'While a master is down the cluster refuses commands: the queue waits and progress comes by polling.',
    ]);
  }
  const first = answers[0]!.node;
  const version = parseInfo(await first.info('server')).redis_version ?? '?';
  const pubsub = (await supportsShardedPubSub(first))
    ? 'sharded Pub/Sub (SPUBLISH/SSUBSCRIBE)'
    : 'classic Pub/Sub: no SPUBLISH before Redis 7, so every hint goes to every node';
  const ping = Math.max(...answers.map((answer) => answer.ping));
  return `Redis ${version} (cluster) with ${masters.length} master${masters.length === 1 ? '' : 's'}, state ok; progress hints use ${pubsub}; PING ${ping} ms (slowest master)`;
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

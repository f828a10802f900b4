import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { findRedisCli } from './server-binaries.js';

export interface StartRedisClusterOptions {
  /** Masters, each with its slots; no replicas. Default 3 (the fewest `redis-cli --cluster create` takes). */
  masters?: number;
  /** How long the cluster may take to serve every slot, at start and after a restart. Default 30 s. */
  readyTimeoutMs?: number;
  /** Extra `--name value` arguments for every redis-server. */
  args?: string[];
}

/**
 * A private Redis Cluster of masters on 127.0.0.1, each a redis-server in its
 * own temp dir with an append-only file, so a master stopped and started again
 * on the same port and dir keeps its keys and rejoins the cluster by its
 * nodes.conf.
 */
export interface RedisCluster {
  readonly masters: readonly RedisServer[];
  /** `127.0.0.1:<port>,…`, as REDIS_CLUSTER_NODES takes it. */
  readonly nodes: string;
  /** The master serving `slot`. */
  masterOf(slot: number): Promise<RedisServer>;
  /** Resolves when every master is up and reports cluster_state:ok and knows every other. */
  waitUntilOk(): Promise<void>;
  destroy(): Promise<void>;
}

const run = promisify(execFile);

/** Starts the masters, joins them with `redis-cli --cluster create` and waits until the cluster serves every slot. */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const count = options.masters ?? 3;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const masters: RedisServer[] = [];
  const destroy = async () => {
    await Promise.all(masters.map((master) => master.destroy()));
  };
  try {
    for (let i = 0; i < count; i++) {
      masters.push(
        await startRedis({
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            // Short, so a stopped master is marked failed (and the cluster down) within a second or two.
            '--cluster-node-timeout',
            '1000',
            // The bus port defaults to port + 10000, which may be taken or above 65535.
            '--cluster-port',
            String(await freePort()),
            '--appendonly',
            'yes',
            ...(options.args ?? []),
          ],
        }),
      );
    }
    await run(findRedisCli(), [
      '--cluster',
      'create',
      ...masters.map((master) => `127.0.0.1:${master.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
  } catch (error) {
    await destroy();
    throw error;
  }

  const waitUntilOk = async () => {
    const deadline = Date.now() + readyTimeoutMs;
    let last = 'no answer yet';
    for (;;) {
      last = (await Promise.all(masters.map((master) => clusterStateOf(master, count)))).join('; ');
      if (last.split('; ').every((state) => state === 'ok')) return;
      if (Date.now() > deadline) {
        throw new Error(
          `the Redis Cluster did not reach cluster_state:ok within ${readyTimeoutMs} ms: ${last}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  try {
    await waitUntilOk();
  } catch (error) {
    await destroy();
    throw error;
  }

  return {
    masters,
    nodes: masters.map((master) => `127.0.0.1:${master.port}`).join(','),
    async masterOf(slot) {
      const client = new Redis(masters.find((master) => master.running)!.url, { maxRetriesPerRequest: 1 });
      try {
        const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
        const range = ranges.find(([from, to]) => from <= slot && slot <= to);
        const master = masters.find((candidate) => candidate.port === range?.[2][1]);
        if (!master) throw new Error(`no master of the test cluster serves slot ${slot}`);
        return master;
      } finally {
        client.disconnect();
      }
    },
    waitUntilOk,
    destroy,
  };
}

/** `ok`, or what is not yet ok about one master. */
async function clusterStateOf(master: RedisServer, count: number): Promise<string> {
  if (!master.running) return `${master.port}: not running`;
  const client = new Redis(master.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = String(await client.call('CLUSTER', 'INFO'));
    const state = /cluster_state:(\w+)/.exec(info)?.[1];
    const known = Number(/cluster_known_nodes:(\d+)/.exec(info)?.[1]);
    return state === 'ok' && known === count ? 'ok' : `${master.port}: state ${state}, knows ${known} nodes`;
  } catch (error) {
    return `${master.port}: ${(error as Error).message}`;
  } finally {
    client.disconnect();
  }
}

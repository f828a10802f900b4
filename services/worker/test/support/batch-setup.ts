import { createLogger, loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import { createNodeOperator } from '@nodebatch/kube';
import type { NodeOperator } from '@nodebatch/kube';
import type { FakeKubeApi } from '@nodebatch/kube/testing';
import { createBatchQueue, createRuntime } from '@nodebatch/runtime';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { createTestDatabase, sharedRedisUrl } from '@nodebatch/testkit';
import type { Logger } from 'pino';
import { testEnv } from './batch-harness.js';
import { removeQueueKeys } from './remove-queue-keys.js';

/** What a test file drives batches with: its database and queue, and a runtime of its own. */
export interface BatchSetup {
  /** What the configuration was read from: a worker process started with it shares the database and queue. */
  env: Record<string, string>;
  /** The database's URL, for a connection of the test's own (one that injects a fault). */
  databaseUrl: string;
  config: NodebatchConfig;
  /** The test's runtime: appends TaskCreated, watches the task. */
  runtime: Runtime;
  queue: BatchQueue;
  /** Closes the queue and the runtime, removes the database and the queue's keys. */
  close(): Promise<void>;
}

export interface BatchSetupOptions {
  /** Variables on top of testEnv's (cluster, worker settings). Default none. */
  env?: Record<string, string>;
  /** The runtime's and the queue's logger. Default silent. */
  logger?: Logger;
  /** The queue's Redis; null puts the queue in PostgreSQL. Default the shared Redis. */
  redisUrl?: string | null;
}

/** A set-up on a database of its own (named after `prefix`) on the shared PostgreSQL. */
export async function startBatchSetup(prefix: string, options: BatchSetupOptions = {}): Promise<BatchSetup> {
  const database = await createTestDatabase({ prefix });
  return openBatchSetup({ url: database.url, remove: () => database.drop() }, options);
}

/** Where a set-up's database is, and how to remove it once nothing is connected to it. */
interface SetupDatabase {
  url: string;
  remove(): Promise<void>;
}

/**
 * The runtime and queue on `database`, which is removed when they cannot be made, or else
 * last in close(). Exported for the set-ups on a database of another kind (a private server).
 */
export async function openBatchSetup(
  database: SetupDatabase,
  options: BatchSetupOptions = {},
): Promise<BatchSetup> {
  const logger = options.logger ?? createLogger({ level: 'silent' });
  const redisUrl = options.redisUrl === undefined ? sharedRedisUrl() : options.redisUrl;
  const env = {
    ...testEnv(database.url, redisUrl === null ? {} : { redisUrl }),
    ...options.env,
  };
  try {
    const config = loadConfig({ env }).config;
    const runtime = await createRuntime({ config, logger });
    const queue = createBatchQueue({ config, logger });
    return {
      env,
      databaseUrl: database.url,
      config,
      runtime,
      queue,
      close: async () => {
        await queue.close();
        await runtime.close();
        await database.remove();
        if (redisUrl !== null) await removeQueueKeys(redisUrl, config.queue.name);
      },
    };
  } catch (err) {
    await database.remove();
    throw err;
  }
}

/**
 * The Kubernetes operator a worker uses against a fake API server, with short eviction
 * back-off so that refused evictions are retried within a test's time.
 */
export function fakeApiOperator(config: NodebatchConfig, api: FakeKubeApi, logger: Logger): NodeOperator {
  return createNodeOperator({
    cluster: { ...config.cluster, mode: 'kubernetes', kubeconfig: api.kubeconfigPath },
    logger,
    kubernetes: { evictionBackoff: { initialMs: 20, maxMs: 100 } },
  });
}

import { createLogger, loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import { createBatchQueue, createRuntime } from '@nodebatch/runtime';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { sharedRedisUrl, startPostgres } from '@nodebatch/testkit';
import type { PostgresServer } from '@nodebatch/testkit';
import { testEnv } from './batch-harness.js';
import { removeQueueKeys } from './remove-queue-keys.js';

/** A private PostgreSQL to stop or alter, and what a test drives batches with: the queue stays on the shared Redis. */
export interface PrivateDatabaseSetup {
  server: PostgresServer;
  config: NodebatchConfig;
  /** The test's own runtime (its logger is silent): appends TaskCreated, watches the task. */
  runtime: Runtime;
  queue: BatchQueue;
  /** Closes the queue and the runtime, removes the server and the queue's keys. */
  close(): Promise<void>;
}

export async function startPrivateDatabaseSetup(env: Record<string, string>): Promise<PrivateDatabaseSetup> {
  const logger = createLogger({ level: 'silent' });
  const server = await startPostgres();
  const config = loadConfig({
    env: { ...testEnv(server.url, { redisUrl: sharedRedisUrl() }), ...env },
  }).config;
  const runtime = await createRuntime({ config, logger });
  const queue = createBatchQueue({ config, logger });
  return {
    server,
    config,
    runtime,
    queue,
    close: async () => {
      await queue.close();
      await runtime.close();
      await server.destroy();
      await removeQueueKeys(sharedRedisUrl(), config.queue.name);
    },
  };
}

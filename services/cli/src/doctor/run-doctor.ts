import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from 'pino';
import {
  describeDatabase,
  describeRedis,
  pgPoolConfig,
  redisOptions,
  type NodebatchConfig,
} from '@nodebatch/config';
import { runMigrations } from '@nodebatch/event-store';
import { withTimeout } from '@nodebatch/progress';
import {
  createBatchQueue,
  createRuntime,
  diagnoseConnectionError,
  describeQueueBackend,
  type ConnectionTarget,
} from '@nodebatch/runtime';
import { CheckFailure, CheckWarning, runCheck, skipped, type CheckResult } from './doctor-check.js';

export interface DoctorOptions {
  config: NodebatchConfig;
  logger: Logger;
  env?: Record<string, string | undefined>;
  /** Per-check time limit. Default 5000 ms. */
  timeoutMs?: number;
}

/**
 * The checks of `nodebatch doctor`, in the order a deployment depends on
 * them: database, migrations, the LISTEN connection, Redis, the queue, and a
 * round trip through the notifier. A check whose prerequisite failed is
 * skipped rather than failing again with the same cause.
 */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const { config, logger } = options;
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 5000;
  const dbTarget: ConnectionTarget = { service: 'postgres', ...describeDatabase(config.database) };
  const where = `${dbTarget.host}:${dbTarget.port}/${dbTarget.database} as ${dbTarget.username}`;
  const diagnosed = (err: unknown, target: ConnectionTarget) => {
    const diagnosis = diagnoseConnectionError(err, target, env);
    return new CheckFailure(`${diagnosis.summary}: ${diagnosis.message}`, diagnosis.checklist, {
      cause: err,
    });
  };
  const results: CheckResult[] = [];

  const database = await runCheck('database', async () => {
    const client = quietClient(config, timeoutMs);
    try {
      await client.connect();
      const { rows } = await client.query<{ version: string }>(
        "SELECT current_setting('server_version') AS version",
      );
      return `PostgreSQL ${rows[0]?.version ?? '?'} at ${where} (sslmode ${dbTarget.sslMode})`;
    } catch (err) {
      throw diagnosed(err, dbTarget);
    } finally {
      await client.end().catch(() => undefined);
    }
  });
  results.push(database);
  const databaseOk = database.status === 'ok';

  results.push(
    databaseOk
      ? await runCheck('migrations', async () => {
          const pool = new pg.Pool({ ...pgPoolConfig(config.database), max: 1 });
          try {
            const { applied } = await runMigrations(pool, { logger });
            return applied.length === 0
              ? 'event store schema up to date'
              : `applied ${applied.length} pending migration(s): ${applied.join(', ')}`;
          } finally {
            await pool.end();
          }
        })
      : skipped('migrations', 'needs the database'),
  );

  results.push(
    databaseOk
      ? await runCheck('listener', () =>
          listenRoundTrip(config, timeoutMs, (err) => diagnosed(err, dbTarget)),
        )
      : skipped('listener', 'needs the database'),
  );

  if (config.redis) {
    const redisTarget: ConnectionTarget = { service: 'redis', ...describeRedis(config.redis) };
    results.push(
      await runCheck('redis', async () => {
        const redis = new Redis({
          ...redisOptions(config.redis!),
          lazyConnect: true,
          connectTimeout: timeoutMs,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        redis.on('error', () => undefined);
        try {
          await redis.connect();
          const started = performance.now();
          await redis.ping();
          return `Redis at ${redisTarget.host}:${redisTarget.port} db ${config.redis!.db}, PING ${Math.round(performance.now() - started)} ms`;
        } catch (err) {
          throw diagnosed(err, redisTarget);
        } finally {
          redis.disconnect();
        }
      }),
    );
  } else {
    results.push(skipped('redis', 'not configured (REDIS_URL or REDIS_HOST); the queue uses PostgreSQL'));
  }

  const queuePrerequisite = config.redis ? results.at(-1)!.status === 'ok' : databaseOk;
  results.push(
    queuePrerequisite
      ? await runCheck('queue', async () => {
          const queue = createBatchQueue({ config, logger });
          try {
            const counts = await withTimeout(
              queue.jobCounts(),
              timeoutMs,
              () => new CheckFailure('the queue did not answer'),
            );
            const summary = Object.entries(counts)
              .map(([state, n]) => `${n} ${state}`)
              .join(', ');
            return `BullMQ ${JSON.stringify(describeQueueBackend(config))}: ${summary}`;
          } finally {
            await queue.close();
          }
        })
      : skipped('queue', `needs ${config.redis ? 'Redis' : 'the database'}`),
  );

  results.push(
    databaseOk
      ? await runCheck('notifier', async () => {
          const runtime = await createRuntime({ config, logger, env, retention: false });
          try {
            const result = await runtime.notifier.verify(timeoutMs);
            const info = runtime.notifier.info;
            if (!result.ok)
              throw new CheckFailure(`round trip through ${result.transport} failed: ${result.error}`);
            const trip = `round trip through ${result.transport} in ${Math.round(result.roundTripMs ?? 0)} ms`;
            if (info.fallback) {
              throw new CheckWarning(`${trip}, but as a fallback for ${info.configured}: ${info.reason}`);
            }
            return `${trip} (configured ${info.configured})`;
          } finally {
            await runtime.close();
          }
        })
      : skipped('notifier', 'needs the database'),
  );
  return results;
}

/** LISTEN on a private channel and NOTIFY it: the path the postgres transport takes, on its own connection. */
async function listenRoundTrip(
  config: NodebatchConfig,
  timeoutMs: number,
  diagnose: (err: unknown) => Error,
): Promise<string> {
  const client = quietClient(config, timeoutMs);
  const channel = `nodebatch_doctor_${randomBytes(4).toString('hex')}`;
  try {
    await client.connect();
  } catch (err) {
    throw diagnose(err);
  }
  try {
    await client.query(`LISTEN ${channel}`);
    const started = performance.now();
    const received = new Promise<void>((resolve) =>
      client.on('notification', (message) => {
        if (message.channel === channel) resolve();
      }),
    );
    await client.query('SELECT pg_notify($1, $2)', [channel, 'doctor']);
    await withTimeout(
      received,
      timeoutMs,
      () => new CheckFailure(`no NOTIFY came back on ${channel} within ${timeoutMs} ms`),
    );
    return `LISTEN/NOTIFY round trip in ${Math.round(performance.now() - started)} ms`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A client whose failures arrive through the awaited calls: without an
 * 'error' listener a connection dropped by the server would crash doctor
 * instead of being reported by the check.
 */
function quietClient(config: NodebatchConfig, timeoutMs: number): pg.Client {
  const client = new pg.Client({ ...pgPoolConfig(config.database), connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  return client;
}

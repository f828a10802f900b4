import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import {
  clusterTargets,
  describeDatabase,
  hasSeparateListener,
  listenerDatabase,
  pgPoolConfig,
  type DatabaseConfig,
  type NodebatchConfig,
} from '@nodebatch/config';
import { pendingMigrations, runMigrations } from '@nodebatch/event-store';
import { withTimeout } from '@nodebatch/progress';
import {
  NOTIFY_NOT_DELIVERED,
  QUEUE_POSTGRES_SCHEMA,
  createBatchQueue,
  createRuntime,
  diagnoseConnectionError,
  describeQueueBackend,
  type ConnectionTarget,
} from '@nodebatch/runtime';
import { checkClockSkew } from './clock-skew.js';
import { CheckFailure, CheckWarning, runCheck, skipped, type CheckResult } from './doctor-check.js';
import { checkKubernetes } from './kubernetes-access.js';
import { checkRedis } from './redis-check.js';

interface DoctorOptions {
  config: NodebatchConfig;
  logger: Logger;
  env?: Record<string, string | undefined>;
  /** Per-check time limit. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * Apply what is pending (event store migrations, BullMQ's PostgreSQL
   * schema). Default false: doctor only looks, and says which command would.
   */
  fix?: boolean;
}

/** The command that applies what doctor found pending. */
const FIX_COMMAND = 'nodebatch doctor --fix';

/**
 * The checks of `nodebatch doctor`, in the order a deployment depends on
 * them: the database through the pool's path, its clock, migrations, the
 * LISTEN connection's own path, Redis, the queue, a round trip through the
 * notifier, and the Kubernetes API. Read-only unless `fix` is set. A check
 * whose prerequisite failed is skipped rather than failing again with the
 * same cause.
 */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const { config, logger } = options;
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 5000;
  const fix = options.fix ?? false;
  const dbTarget: ConnectionTarget = { service: 'postgres', ...describeDatabase(config.database) };
  const diagnosed = (err: unknown, target: ConnectionTarget) => {
    const diagnosis = diagnoseConnectionError(err, target, env);
    return new CheckFailure(`${diagnosis.summary}: ${diagnosis.message}`, diagnosis.checklist, {
      cause: err,
    });
  };
  const results: CheckResult[] = [];

  const database = await runCheck('database', async () => {
    const client = quietClient(config.database, timeoutMs);
    try {
      await client.connect();
      const { rows } = await client.query<{ version: string }>(
        "SELECT current_setting('server_version') AS version",
      );
      return `PostgreSQL ${rows[0]?.version ?? '?'} at ${describeWhere(dbTarget)} (sslmode ${dbTarget.sslMode}), the pool's path`;
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
      ? await runCheck('clock', () =>
          withClient(config.database, timeoutMs, (client) => checkClockSkew(client)),
        )
      : skipped('clock', 'needs the database'),
  );

  const migrations = databaseOk
    ? await runCheck('migrations', async () => {
        const pool = new pg.Pool({ ...pgPoolConfig(config.database), max: 1 });
        try {
          const pending = await pendingMigrations(pool);
          if (pending.length === 0) return 'event store schema up to date';
          if (!fix) {
            throw new CheckFailure(
              `${pending.length} pending event store migration(s): ${pending.join(', ')}`,
              [
                `Apply them with \`${FIX_COMMAND}\` (or \`nodebatch migrate\`); workers and gateways also apply them at start.`,
              ],
            );
          }
          const { applied } = await runMigrations(pool, { logger });
          return `applied ${applied.length} pending migration(s): ${applied.join(', ')}`;
        } finally {
          await pool.end();
        }
      })
    : skipped('migrations', 'needs the database');
  results.push(migrations);

  const listenDb = listenerDatabase(config.database);
  const listenTarget: ConnectionTarget = { service: 'postgres', ...describeDatabase(listenDb) };
  results.push(
    databaseOk
      ? await runCheck('listener', async () => {
          const trip = await listenRoundTrip(config.database, listenDb, timeoutMs, (err) =>
            diagnosed(err, listenTarget),
          );
          return hasSeparateListener(config.database)
            ? `${trip}; LISTEN at ${describeWhere(listenTarget)} (DB_LISTEN_*), apart from the pool at ${dbTarget.host}:${dbTarget.port}`
            : `${trip}; LISTEN on the pool's address ${dbTarget.host}:${dbTarget.port}`;
        })
      : skipped('listener', 'needs the database'),
  );

  if (config.redis) {
    results.push(await runCheck('redis', () => checkRedis(config.redis!, timeoutMs, diagnosed)));
  } else {
    results.push(
      skipped(
        'redis',
        'not configured (REDIS_URL, REDIS_HOST or REDIS_CLUSTER_NODES); the queue uses PostgreSQL',
      ),
    );
  }

  const queuePrerequisite = config.redis ? results.at(-1)!.status === 'ok' : databaseOk;
  results.push(
    queuePrerequisite
      ? await runCheck('queue', async () => {
          if (!config.redis && !fix) await requireQueueSchema(listenDb, timeoutMs);
          const queue = createBatchQueue({ config, logger, migrate: fix });
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
    databaseOk && migrations.status === 'ok'
      ? await runCheck('notifier', async () => {
          const runtime = await createRuntime({ config, logger, env, retention: false, migrate: false });
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
      : skipped('notifier', databaseOk ? 'needs the migrations applied' : 'needs the database'),
  );

  // One check per named cluster (`kubernetes <name>`), or one `kubernetes` check without a list.
  const listed = config.cluster.clusters !== undefined;
  for (const target of clusterTargets(config.cluster)) {
    const name = listed ? `kubernetes ${target.name}` : 'kubernetes';
    results.push(
      target.mode === 'kubernetes'
        ? await runCheck(name, () =>
            withTimeout(checkKubernetes(target, env), timeoutMs, 'the Kubernetes API did not answer'),
          )
        : skipped(
            name,
            listed
              ? 'simulated cluster (mode: simulated)'
              : 'simulated cluster (NODEBATCH_CLUSTER=simulated)',
          ),
    );
  }
  return results;
}

/**
 * LISTEN on a private channel on the listener's own connection, NOTIFY
 * through the pool's path: the two paths the postgres transport takes. Behind
 * a transaction-mode pooler both succeed and nothing arrives, which only a
 * round trip across two connections shows.
 */
async function listenRoundTrip(
  pool: DatabaseConfig,
  listener: DatabaseConfig,
  timeoutMs: number,
  diagnose: (err: unknown) => Error,
): Promise<string> {
  const listen = quietClient(listener, timeoutMs);
  const channel = `nodebatch_doctor_${randomBytes(4).toString('hex')}`;
  try {
    await listen.connect();
  } catch (err) {
    throw diagnose(err);
  }
  try {
    await listen.query(`LISTEN ${channel}`);
    const received = new Promise<void>((resolve) =>
      listen.on('notification', (message) => {
        if (message.channel === channel) resolve();
      }),
    );
    const started = performance.now();
    await withClient(pool, timeoutMs, (client) =>
      client.query('SELECT pg_notify($1, $2)', [channel, 'doctor']),
    );
    try {
      await withTimeout(received, timeoutMs, `no NOTIFY came back on ${channel} within ${timeoutMs} ms`);
    } catch (err) {
      throw diagnose(Object.assign(new Error((err as Error).message), { code: NOTIFY_NOT_DELIVERED }));
    }
    return `LISTEN/NOTIFY round trip in ${Math.round(performance.now() - started)} ms`;
  } finally {
    await listen.end().catch(() => undefined);
  }
}

/** BullMQ creates its schema on a worker's first connection; without --fix doctor only says it is missing. */
async function requireQueueSchema(database: DatabaseConfig, timeoutMs: number): Promise<void> {
  const { rows } = await withClient(database, timeoutMs, (client) =>
    client.query<{ present: boolean }>('SELECT to_regnamespace($1) IS NOT NULL AS present', [
      QUEUE_POSTGRES_SCHEMA,
    ]),
  );
  if (!rows[0]?.present) {
    throw new CheckFailure(`BullMQ's PostgreSQL schema "${QUEUE_POSTGRES_SCHEMA}" does not exist yet`, [
      `Create it with \`${FIX_COMMAND}\`; a worker also creates it at start.`,
    ]);
  }
}

function describeWhere(target: ConnectionTarget): string {
  return `${target.host}:${target.port}/${target.database} as ${target.username}`;
}

async function withClient<T>(
  database: DatabaseConfig,
  timeoutMs: number,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = quietClient(database, timeoutMs);
  try {
    await client.connect();
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A client whose failures arrive through the awaited calls: without an
 * 'error' listener a connection dropped by the server would crash doctor
 * instead of being reported by the check.
 */
function quietClient(database: DatabaseConfig, timeoutMs: number): pg.Client {
  const client = new pg.Client({ ...pgPoolConfig(database), connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  return client;
}

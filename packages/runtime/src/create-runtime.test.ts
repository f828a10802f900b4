import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '@nodebatch/config';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { DatabaseUnavailableError, createRuntime } from './create-runtime.js';

let db: TestDatabase;
const silent = pino({ level: 'silent' });

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'rt' });
});

afterAll(async () => {
  await db?.drop();
});

function configFor(env: Record<string, string>) {
  return loadConfig({ env: { DATABASE_URL: db.url, ...env }, cwd: '/nonexistent' }).config;
}

describe('createRuntime', () => {
  it('wires the store, the postgres notifier and live streams', async () => {
    const runtime = await createRuntime({
      config: configFor({ PROGRESS_NOTIFY_TYPE: 'postgres' }),
      logger: silent,
      postgresChannel: uniqueName('rt'),
    });
    try {
      expect(runtime.notifier.info).toMatchObject({
        configured: 'postgres',
        active: 'postgres',
        healthy: true,
        fallback: false,
      });
      const taskId = uniqueName('task');
      await runtime.notifier.append(taskId, [
        { type: 'TaskCreated', data: { userId: 'u', action: 'cordon', nodes: ['n1'], params: {} } },
      ]);
      const events = firstValueFrom(
        runtime.streams.events$(taskId).pipe(take(3), toArray(), timeout(15_000)),
      );
      await runtime.notifier.append(taskId, [{ type: 'TaskStarted', data: { attempt: 1 } }]);
      await runtime.notifier.append(taskId, [{ type: 'NodeStarted', data: { node: 'n1', attempt: 1 } }]);
      expect((await events).map((event) => event.seq)).toEqual([1, 2, 3]);
      const verified = await runtime.notifier.verify(5_000);
      expect(verified).toMatchObject({ ok: true, transport: 'postgres', fallback: false });
    } finally {
      await runtime.close();
      await runtime.close();
    }
  });

  it.each([
    ['postgres', 'false'],
    ['postgres', 'true'],
    ['redis', 'false'],
    ['redis', 'true'],
  ] as const)(
    '%s, PROGRESS_COMBINED_HINTS=%s: appendMany writes several tasks in one call and announces each of them on the channel',
    async (transport, combined) => {
      const channel = uniqueName('rt');
      const runtime = await createRuntime({
        config: configFor({
          PROGRESS_NOTIFY_TYPE: transport,
          PROGRESS_COMBINED_HINTS: combined,
          ...(transport === 'redis' && { REDIS_URL: sharedRedisUrl() }),
        }),
        logger: silent,
        postgresChannel: channel,
        redisChannel: channel,
      });
      // What goes over the channel, heard by a connection of the test's own.
      const heard: string[] = [];
      const listener = await listenOn(transport, channel, (payload) => heard.push(payload));
      try {
        expect(runtime.notifier.info).toMatchObject({ active: transport, fallback: false });
        const tasks = [uniqueName('task'), uniqueName('task')];
        for (const taskId of tasks) {
          await runtime.notifier.append(taskId, [
            { type: 'TaskCreated', data: { userId: 'u', action: 'cordon', nodes: ['n1'], params: {} } },
          ]);
        }
        const stored = await runtime.notifier.appendMany(
          tasks.map((taskId) => ({
            taskId,
            events: [
              { type: 'TaskStarted', data: { attempt: 1 } },
              { type: 'NodeStarted', data: { node: 'n1', attempt: 1 } },
            ],
            options: { expectedSeq: 1 },
          })),
        );
        expect(stored.map((events) => events.map((event) => [event.taskId, event.seq]))).toEqual(
          tasks.map((taskId) => [
            [taskId, 2],
            [taskId, 3],
          ]),
        );
        // Each task's append, and appendMany: one announcement of both tasks, combined, or one for each.
        const announcements = combined === 'true' ? 3 : 4;
        await vi.waitFor(
          () => {
            expect(heard.filter((payload) => !payload.includes('probe'))).toHaveLength(announcements);
            for (const taskId of tasks) {
              expect(heard.filter((payload) => payload.includes(taskId))).toHaveLength(2);
            }
          },
          { timeout: 10_000, interval: 20 },
        );
      } finally {
        await listener.close();
        await runtime.close();
      }
    },
  );

  it('reports configured polling as verified, not as a fallback', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const runtime = await createRuntime({
      config: configFor({ PROGRESS_NOTIFY_TYPE: 'polling', PROGRESS_POLL_INTERVAL: '100' }),
      logger,
    });
    try {
      expect(runtime.notifier.info).toMatchObject({
        configured: 'polling',
        active: 'polling',
        fallback: false,
      });
      expect(lines.filter((line) => line.msg === 'polling configured, verified')).toHaveLength(1);
      expect(await runtime.notifier.verify()).toMatchObject({ ok: true, transport: 'polling' });
    } finally {
      await runtime.close();
    }
  });

  it('falls back to polling with a diagnosis when the listener cannot connect', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const config = configFor({ PROGRESS_NOTIFY_TYPE: 'postgres' });
    const runtime = await createRuntime({
      config,
      logger,
      listenerDatabase: { ...config.database, database: 'nb_listener_db_missing' },
    });
    try {
      const info = await firstValueFrom(
        runtime.notifier.info$.pipe(
          filter((i) => i.fallback),
          timeout(15_000),
        ),
      );
      expect(info).toMatchObject({
        configured: 'postgres',
        active: 'polling',
        healthy: true,
        fallback: true,
      });
      expect(info.reason).toContain('"nb_listener_db_missing" does not exist');
      const error = lines.find((line) => line.level === 50);
      expect(error).toMatchObject({ code: '3D000', target: { database: 'nb_listener_db_missing' } });
      expect(
        lines.filter((line) => String(line.msg).startsWith('using polling as fallback for postgres: ')),
      ).toHaveLength(1);
    } finally {
      await runtime.close();
    }
  });

  it('refuses to start without the main database, naming it', async () => {
    const config = configFor({ DB_DATABASE: 'nb_main_db_missing' });
    const failure = await createRuntime({ config, logger: silent }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DatabaseUnavailableError);
    expect((failure as DatabaseUnavailableError).message).toContain('"nb_main_db_missing"');
  });

  it('hands EVENT_RETENTION_DAYS to the retention job, which deletes what finished longer ago at start', async () => {
    // Two tasks finished 2 days and 12 hours ago, written before the runtime starts; its retention job
    // runs at once. With EVENT_RETENTION_DAYS=1 the first goes and the second stays; the default of 7
    // days, or a value that never reached the job, would keep both.
    const setup = await createRuntime({
      config: configFor({ PROGRESS_NOTIFY_TYPE: 'polling' }),
      logger: silent,
      retention: false,
    });
    const finishedAgo = async (ms: number): Promise<string> => {
      const taskId = uniqueName('retained');
      const time = new Date(Date.now() - ms).toISOString();
      await setup.store.append(taskId, [
        { type: 'TaskCreated', data: { userId: 'u', action: 'cordon', nodes: ['n1'], params: {} }, time },
        { type: 'TaskCompleted', data: { succeeded: 0, failed: 0, skipped: 0 }, time },
      ]);
      return taskId;
    };
    const old = await finishedAgo(2 * 86_400_000);
    const recent = await finishedAgo(12 * 3_600_000);
    await setup.close();

    const runtime = await createRuntime({
      config: configFor({ PROGRESS_NOTIFY_TYPE: 'polling', EVENT_RETENTION_DAYS: '1' }),
      logger: silent,
    });
    try {
      await vi.waitFor(async () => expect(await runtime.store.latestSeqs([old])).toEqual(new Map()), {
        timeout: 60_000,
        interval: 100,
      });
      expect(await runtime.store.latestSeqs([recent])).toEqual(new Map([[recent, 2]]));
    } finally {
      await runtime.close();
    }
  }, 120_000);
});

/** A LISTEN (postgres) or SUBSCRIBE (redis) connection of its own on `channel`. */
async function listenOn(
  transport: 'postgres' | 'redis',
  channel: string,
  onMessage: (payload: string) => void,
): Promise<{ close(): Promise<void> }> {
  if (transport === 'postgres') {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    client.on('notification', (message) => onMessage(message.payload ?? ''));
    await client.query(`LISTEN "${channel}"`);
    return { close: () => client.end() };
  }
  const subscriber = new Redis(sharedRedisUrl());
  subscriber.on('message', (_channel: string, payload: string) => onMessage(payload));
  await subscriber.subscribe(channel);
  return {
    close: async () => {
      await subscriber.quit();
    },
  };
}

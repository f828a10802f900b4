import { filter, firstValueFrom, lastValueFrom, take, timeout, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '@nodebatch/runtime';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase, sharedDatabaseUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { dropPostgresNotifications, startDroppingProxy } from './dropping-proxy.js';
import {
  captureLogger,
  collectSeqs,
  completed,
  configFor,
  countListeners,
  created,
  expectStaysOnPolling,
  progressEvent,
  withClient,
} from './support.js';

/**
 * The postgres transport as services use it, through createRuntime, on the
 * shared server (nothing here breaks the server; the test's own database
 * scopes every NOTIFY).
 */

let db: TestDatabase;
let runtime: Runtime;
const capture = captureLogger('info');

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'pgrt' });
  runtime = await createRuntime({
    config: configFor(db.url, { PROGRESS_NOTIFY_TYPE: 'postgres' }),
    logger: capture.logger,
  });
});

afterAll(async () => {
  await runtime?.close();
  await db?.drop();
});

describe('postgres transport through the runtime', () => {
  it('delivers a 20 KB event whole (over the 8000-byte NOTIFY limit)', async () => {
    const taskId = uniqueName('task');
    await runtime.notifier.append(taskId, [created()]);
    const events = lastValueFrom(runtime.streams.events$(taskId).pipe(toArray(), timeout(30_000)));
    const message = 'ü'.repeat(10_000); // 20,000 bytes of UTF-8
    await runtime.notifier.append(taskId, [progressEvent(1, 2, message)]);
    await runtime.notifier.append(taskId, [completed()]);
    const received = await events;
    expect(received.map((event) => event.seq)).toEqual([1, 2, 3]);
    const big = received[1]!;
    expect(big.type === 'NodeProgress' && big.data.message).toBe(message);
  });

  it('survives junk NOTIFYs from another program on its channel, logging them once', async () => {
    const taskId = uniqueName('task');
    await runtime.notifier.append(taskId, [created()]);
    const seqs = collectSeqs(runtime.streams, taskId, 30_000);
    await withClient(db.url, async (client) => {
      await client.query(`NOTIFY nodebatch_progress, 'garbage'`);
      await client.query(`NOTIFY nodebatch_progress, '{"taskId": 42}'`);
      await client.query(`SELECT pg_notify('nodebatch_progress', $1)`, [JSON.stringify({ probe: '' })]);
    });
    await runtime.notifier.append(taskId, [progressEvent(1, 2)]);
    await runtime.notifier.append(taskId, [completed()]);
    expect(await seqs).toEqual([1, 2, 3]);
    const malformed = capture.lines.filter((line) => String(line.msg).includes('malformed payload'));
    expect(malformed).toHaveLength(1);
    expect(malformed[0]).toMatchObject({ level: 40, payload: 'garbage', channel: 'nodebatch_progress' });
    expect(runtime.notifier.info).toMatchObject({ active: 'postgres', healthy: true, fallback: false });
  });

  it('serves 1,000 subscribers in one process with one LISTEN connection', async () => {
    const tasks = Array.from({ length: 50 }, () => uniqueName('task'));
    for (const taskId of tasks) await runtime.notifier.append(taskId, [created()]);
    const subscribers = tasks.flatMap((taskId) =>
      Array.from({ length: 20 }, () =>
        firstValueFrom(
          runtime.streams.events$(taskId).pipe(
            filter((event) => event.seq === 3),
            take(1),
            timeout(60_000),
          ),
        ),
      ),
    );
    expect(subscribers).toHaveLength(1_000);
    // While all 1,000 are subscribed: one LISTEN connection, whatever the number of clients (invariant 5, docs/invariants.md).
    expect(await countListeners(sharedDatabaseUrl(), db.name)).toBe(1);
    for (const taskId of tasks)
      await runtime.notifier.append(taskId, [progressEvent(1, 2), progressEvent(2, 2)]);
    const delivered = await Promise.all(subscribers);
    expect(delivered.every((event) => event.seq === 3)).toBe(true);
    expect(await countListeners(sharedDatabaseUrl(), db.name)).toBe(1);
  });

  it('stays on polling, and polling delivers everything, when LISTEN succeeds but no notification comes back', async () => {
    const config = configFor(db.url, { PROGRESS_NOTIFY_TYPE: 'postgres', PROGRESS_POLL_INTERVAL: '100' });
    const proxy = await startDroppingProxy(
      { host: config.database.host, port: config.database.port },
      dropPostgresNotifications,
    );
    const { logger, lines } = captureLogger('debug');
    const quiet = await createRuntime({
      config,
      logger,
      listenerDatabase: { ...config.database, host: '127.0.0.1', port: proxy.port },
      notifierRetry: { minDelayMs: 200, maxDelayMs: 1_000 },
    });
    try {
      // The listener connected and LISTENs, but its probe never came back.
      expect(quiet.notifier.info).toMatchObject({
        configured: 'postgres',
        active: 'polling',
        fallback: true,
      });
      expect(quiet.notifier.info.reason).toMatch(/notifications never reached the LISTEN connection/);
      await expectStaysOnPolling(quiet, lines, 'postgres');
      expect(proxy.dropped).toBeGreaterThan(0);
    } finally {
      await quiet.close();
      await proxy.close();
    }
  });
});

import { recordEventStream } from '@nodebatch/client/testing';
import { freePort, sharedRedisUrl, startPostgres, uniqueName } from '@nodebatch/testkit';
import type { PostgresServer } from '@nodebatch/testkit';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { GatewayHandle } from '../src/gateway.js';
import { api, startProducer, startTestGateway, testConfig, tokenFor } from './support.js';

// A private server: stopping the shared one would break every other test.
let server: PostgresServer;
let gateway: GatewayHandle;

beforeAll(async () => {
  server = await startPostgres();
  // The job queue on Redis: this test is about the gateway's view of the event log's database.
  const config = testConfig(server.url, { REDIS_URL: sharedRedisUrl() });
  gateway = await startTestGateway(config, { readinessTimeoutMs: 2000 });
});

afterAll(async () => {
  await gateway?.close();
  await server?.destroy();
});

it('/readyz answers 503 with the reason while the database is down (the API 503 with Retry-After), and 200 again once it is back', async () => {
  const ready = await api(gateway, 'GET', '/readyz');
  expect(ready.status).toBe(200);
  expect(ready.body.database).toEqual({ ok: true });

  await server.stop();
  const down = await api(gateway, 'GET', '/readyz');
  expect(down.status).toBe(503);
  expect(down.body.status).toBe('unavailable');
  expect(down.body.reason).toMatch(/^database unavailable: /);
  expect(down.body.database.ok).toBe(false);
  expect(down.body.notifier).toMatchObject({ configured: 'postgres' });
  expect((await api(gateway, 'GET', '/healthz')).status).toBe(200);
  const listing = await api(gateway, 'GET', '/api/v1/tasks', { token: await tokenFor('alice') });
  expect(listing.status).toBe(503);
  expect(listing.body.code).toBe('DATABASE_UNAVAILABLE');
  // Clients and proxies are told when to try again rather than hammering a database that is down.
  expect(listing.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);

  await server.start();
  await vi.waitFor(async () => expect((await api(gateway, 'GET', '/readyz')).status).toBe(200), {
    timeout: 30_000,
    interval: 200,
  });
});

it('/readyz during the polling fallback is ready and says so; with nothing delivering it is not, and says why', async () => {
  // LISTEN goes to a port nobody listens on: the notifier starts on the polling fallback.
  const closedPort = await freePort();
  const base = { REDIS_URL: sharedRedisUrl(), PROGRESS_POLL_INTERVAL: '100' };
  const fallback = await startTestGateway(
    testConfig(server.url, { ...base, DB_LISTEN_HOST: '127.0.0.1', DB_LISTEN_PORT: String(closedPort) }),
    { readinessTimeoutMs: 2000 },
  );
  const producer = await startProducer(testConfig(server.url, base));
  try {
    const ready = await api(fallback, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ready',
      database: { ok: true },
      notifier: { configured: 'postgres', active: 'polling', healthy: true, fallback: true },
    });
    expect(ready.body.notifier.reason).toContain(`127.0.0.1:${closedPort}`);

    // A client watches a task, so polling queries the log.
    const taskId = uniqueName('task');
    await producer.notifier.append(taskId, [
      { type: 'TaskCreated', data: { userId: 'alice', action: 'cordon', nodes: ['n1'], params: {} } },
    ]);
    const stream = await recordEventStream(`${fallback.url}/api/v1/tasks/${taskId}/events`, {
      headers: { authorization: `Bearer ${await tokenFor('alice')}` },
    });
    await stream.waitFor((messages) => messages.length === 1);

    // The database goes too: neither LISTEN nor polling delivers, and /readyz says so.
    await server.stop();
    await vi.waitFor(
      async () => {
        const down = await api(fallback, 'GET', '/readyz');
        expect(down.status).toBe(503);
        expect(down.body).toMatchObject({
          status: 'unavailable',
          database: { ok: false },
          notifier: { active: 'polling', healthy: false, fallback: true },
        });
        expect(down.body.reason).toMatch(/^database unavailable: /);
        expect(down.body.notifier.reason).toMatch(/^event store query failed: /);
      },
      { timeout: 30_000, interval: 200 },
    );

    await server.start();
    await vi.waitFor(
      async () => {
        const back = await api(fallback, 'GET', '/readyz');
        expect(back.status).toBe(200);
        expect(back.body.notifier).toMatchObject({ active: 'polling', healthy: true, fallback: true });
      },
      { timeout: 30_000, interval: 200 },
    );
    // And polling delivers again.
    await producer.notifier.append(taskId, [
      { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } },
    ]);
    expect(await stream.ended).toBe(true);
    expect(stream.messages.map((message) => message.id)).toEqual(['1', '2']);
  } finally {
    await producer.close();
    await fallback.close();
  }
}, 120_000);

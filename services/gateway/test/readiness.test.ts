import { sharedRedisUrl, startPostgres } from '@nodebatch/testkit';
import type { PostgresServer } from '@nodebatch/testkit';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { GatewayHandle } from '../src/gateway.js';
import { api, startTestGateway, testConfig, tokenFor } from './support.js';

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

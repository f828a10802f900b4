import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { GatewayHandle } from '../src/gateway.js';
import { recordEventStream } from '@nodebatch/client/testing';
import type { EventStreamRecording } from '@nodebatch/client/testing';
import type { ResponseBody } from './support.js';
import { api, startProducer, startTestGateway, testConfig, tokenFor } from './support.js';

let db: TestDatabase;
let gateway: GatewayHandle;
let producer: Runtime;
let alice: string;
let bob: string;
let carol: string;
let admin: string;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'gw_limits' });
  const config = testConfig(db.url, {
    LIMIT_STREAMS_PER_USER: '2',
    LIMIT_STREAMS_TOTAL: '3',
    LIMIT_BATCHES_PER_MINUTE: '20',
    LIMIT_SUBSCRIBES_PER_MINUTE: '3',
    LIMIT_CANCELS_PER_MINUTE: '3',
    METRICS_PORT: '0',
  });
  producer = await startProducer(config);
  gateway = await startTestGateway(config, { ws: { pingIntervalMs: 300 } });
  [alice, bob, carol, admin] = await Promise.all([
    tokenFor('alice'),
    tokenFor('bob'),
    tokenFor('carol'),
    tokenFor('root', 'admin'),
  ]);
});

afterAll(async () => {
  await gateway?.close();
  await producer?.close();
  await db?.drop();
});

async function submit(token = alice, nodes = ['node-a']): Promise<string> {
  const response = await api(gateway, 'POST', '/api/v1/batches', {
    token,
    body: { action: 'cordon', nodes },
  });
  expect(response.status).toBe(202);
  return response.body.taskId as string;
}

async function finished(token = alice): Promise<string> {
  const taskId = await submit(token);
  await producer.notifier.append(taskId, [
    { type: 'TaskStarted', data: { attempt: 1 } },
    { type: 'NodeSucceeded', data: { node: 'node-a' } },
    { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } },
  ]);
  return taskId;
}

const streamUrl = (taskId: string, query = '') => `${gateway.url}/api/v1/tasks/${taskId}/events${query}`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('resume positions', () => {
  it('answers 400 naming the field for an after or Last-Event-ID outside 0..2^31-1 or not an integer', async () => {
    const taskId = await finished();
    for (const after of ['3000000000', '-1', 'abc', '1.5']) {
      const response = await api(gateway, 'GET', `/api/v1/tasks/${taskId}/events?after=${after}`, {
        token: alice,
      });
      expect(response.status, after).toBe(400);
      expect(response.body.field).toBe('querystring.after');
    }
    for (const header of ['99999999999999999999', '2147483648', 'x1']) {
      const response = await api(gateway, 'GET', `/api/v1/tasks/${taskId}/events`, {
        token: alice,
        headers: { 'last-event-id': header },
      });
      expect(response.status, header).toBe(400);
      expect(response.body).toMatchObject({ code: 'INVALID_REQUEST', field: 'header.last-event-id' });
    }
    const edge = await recordEventStream(streamUrl(taskId, '?after=2147483647'), { headers: bearer(alice) });
    edge.close();
  });

  it('streams from the start when a browser sends a bad Last-Event-ID', async () => {
    const taskId = await finished();
    const stream = await recordEventStream(streamUrl(taskId), {
      headers: { cookie: `nodebatch_token=${alice}`, 'last-event-id': '99999999999999999999' },
    });
    expect(await stream.ended).toBe(true);
    expect(stream.messages.map((m) => Number(m.id))).toEqual([1, 2, 3, 4]);
  });

  it('refuses a WebSocket subscribe with an after beyond 2^31-1', async () => {
    const taskId = await finished();
    const client = await openWs(alice);
    client.socket.send(JSON.stringify({ type: 'subscribe', taskId, after: 3_000_000_000 }));
    await vi.waitFor(() =>
      expect(client.messages).toEqual([expect.objectContaining({ code: 'INVALID_MESSAGE' })]),
    );
    client.socket.close();
  });
});

describe('batch size', () => {
  it('accepts a 5,000-node batch with long node names and records every node', async () => {
    const nodes = Array.from(
      { length: 5000 },
      (_, i) => `ip-10-0-${i >> 8}-${i & 255}.eu-west-1.compute.internal`,
    );
    const taskId = await submit(alice, nodes);
    const [created] = await producer.store.readTask(taskId, { limit: 1 });
    expect((created?.data as { nodes: string[] }).nodes).toEqual(nodes);
    const state = await api(gateway, 'GET', `/api/v1/tasks/${taskId}`, { token: alice });
    expect(state.body).toMatchObject({ total: 5000, status: 'pending' });
  });

  it('answers 413 naming the limit for a batch whose node list is over it, and writes nothing', async () => {
    const nodes = Array.from({ length: 5000 }, (_, i) => `${'n'.repeat(110)}-${i}`);
    const before = (await producer.pool.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n as number;
    const response = await api(gateway, 'POST', '/api/v1/batches', {
      token: alice,
      body: { action: 'cordon', nodes },
    });
    expect(response.status).toBe(413);
    expect(response.body).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', field: 'body.nodes' });
    expect(response.body.message).toMatch(/over the limit of 524288/);
    expect((await producer.pool.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n).toBe(before);
    const tooMany = await api(gateway, 'POST', '/api/v1/batches', {
      token: alice,
      body: { action: 'cordon', nodes: Array.from({ length: 5001 }, (_, i) => `n-${i}`) },
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.field).toBe('body.nodes');
  });
});

describe('connection caps and rates', () => {
  it('caps open streams per user (429) and in total (503), with Retry-After, and frees a slot on close', async () => {
    const taskId = await submit(alice);
    const bobsTask = await submit(bob);
    const open: EventStreamRecording[] = [];
    open.push(await recordEventStream(streamUrl(taskId), { headers: bearer(alice) }));
    open.push(await recordEventStream(streamUrl(taskId), { headers: bearer(alice) }));
    const third = await fetch(streamUrl(taskId), { headers: bearer(alice) });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('5');
    expect(((await third.json()) as ResponseBody).code).toBe('TOO_MANY_STREAMS');
    const upgrade = openWs(alice);
    await expect(upgrade.opened).rejects.toThrow('HTTP 429');

    open.push(await recordEventStream(streamUrl(bobsTask), { headers: bearer(bob) }));
    const full = await fetch(streamUrl(bobsTask), { headers: bearer(admin) });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBe('5');
    expect(((await full.json()) as ResponseBody).code).toBe('GATEWAY_STREAMS_FULL');

    open[0]!.close();
    await vi.waitFor(async () => {
      const again = await recordEventStream(streamUrl(taskId), { headers: bearer(alice) });
      open.push(again);
    });
    for (const stream of open) stream.close();
  });

  it('limits WebSocket subscribes per user per minute', async () => {
    const taskId = await finished(carol);
    const client = await openWs(carol);
    for (let i = 0; i < 4; i++) client.socket.send(JSON.stringify({ type: 'subscribe', taskId }));
    await vi.waitFor(() =>
      expect(client.messages.filter((m) => m.type === 'error' && m.code === 'RATE_LIMITED')).toHaveLength(1),
    );
    client.socket.close();
  });

  it('limits batch submissions per user per minute with 429 and Retry-After', async () => {
    const token = await tokenFor('rapid');
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 21; i++) {
      const response = await fetch(`${gateway.url}/api/v1/batches`, {
        method: 'POST',
        headers: { ...bearer(token), 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'cordon', nodes: ['node-r'] }),
      });
      statuses.push(response.status);
      if (response.status === 429) limited = response;
    }
    expect(statuses.filter((s) => s === 202)).toHaveLength(20);
    expect(statuses.at(-1)).toBe(429);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited!.json()) as ResponseBody).code).toBe('RATE_LIMITED');
    // Another user is not affected.
    expect(
      (
        await api(gateway, 'POST', '/api/v1/batches', {
          token: bob,
          body: { action: 'cordon', nodes: ['n'] },
        })
      ).status,
    ).toBe(202);
  });

  it('limits cancels per user per minute with 429 and Retry-After, and writes nothing for the limited one', async () => {
    const [canceller, other] = await Promise.all([tokenFor('canceller'), tokenFor('other-canceller')]);
    const taskIds = [await submit(canceller), await submit(canceller), await submit(canceller)];
    const cancel = (token: string, taskId: string) =>
      api(gateway, 'POST', `/api/v1/tasks/${taskId}/cancel`, { token });
    for (const taskId of taskIds) expect((await cancel(canceller, taskId)).status).toBe(202);
    const limited = await cancel(canceller, taskIds[0]!);
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ code: 'RATE_LIMITED' });
    expect(limited.body.message).toMatch(
      /at most 3 cancels per user per minute \(LIMIT_CANCELS_PER_MINUTE\)/,
    );
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Nothing was written for the limited cancel: each task has one CancelRequested.
    for (const taskId of taskIds) {
      const events = await producer.store.readTask(taskId);
      expect(events.filter((event) => event.type === 'CancelRequested')).toHaveLength(1);
    }
    // The limit is per user: another user's cancel (of a task not theirs: 404) is still answered.
    expect((await cancel(other, taskIds[0]!)).status).toBe(404);
  });

  it('drops a WebSocket peer that stops answering pings', async () => {
    const socket = connect({ host: '127.0.0.1', port: gateway.port });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(
      [
        'GET /api/v1/progress/ws HTTP/1.1',
        `Host: 127.0.0.1:${gateway.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        `Authorization: Bearer ${admin}`,
        '',
        '',
      ].join('\r\n'),
    );
    // The peer reads but never answers: the gateway pings, then hangs up.
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 101/);
    expect(received).toContain('\x89'); // a ping frame arrived before the drop
  });
});

describe('unknown and deleted tasks', () => {
  it('answers 410 Gone, on the API and the stream, for a task whose events retention deleted', async () => {
    const taskId = await finished();
    await producer.store.deleteExpiredTasks({ olderThanMs: 0 });
    const state = await api(gateway, 'GET', `/api/v1/tasks/${taskId}`, { token: alice });
    expect(state.status).toBe(410);
    expect(state.body.code).toBe('TASK_GONE');
    const stream = await fetch(streamUrl(taskId), { headers: bearer(alice) });
    expect(stream.status).toBe(410);
    expect((await api(gateway, 'GET', `/api/v1/tasks/${taskId}`, { token: bob })).status).toBe(404);
  });
});

describe('internal metrics port', () => {
  it('serves /metrics and the detailed /readyz on METRICS_PORT; the public /readyz says only ready', async () => {
    expect(gateway.internalUrl).toBeDefined();
    const pub = await api(gateway, 'GET', '/readyz');
    expect(pub.status).toBe(200);
    expect(pub.body).toEqual({ status: 'ready' });
    expect((await api(gateway, 'GET', '/metrics')).status).toBe(404);
    const internal = await fetch(`${gateway.internalUrl}/readyz`);
    expect(((await internal.json()) as ResponseBody).notifier).toMatchObject({ configured: 'postgres' });
    const metrics = await fetch(`${gateway.internalUrl}/metrics`);
    expect(await metrics.text()).toContain('nodebatch_gateway_active_streams');
  });
});

function openWs(token: string): {
  socket: WebSocket;
  messages: ResponseBody[];
  opened: Promise<void>;
} & PromiseLike<{
  socket: WebSocket;
  messages: ResponseBody[];
}> {
  const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/api/v1/progress/ws`, {
    headers: bearer(token),
  });
  const messages: ResponseBody[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(data.toString())));
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    socket.once('error', reject);
  });
  return {
    socket,
    messages,
    opened,
    then: (onFulfilled, onRejected) =>
      opened.then(() => ({ socket, messages })).then(onFulfilled, onRejected),
  };
}

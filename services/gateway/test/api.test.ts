import type { NewEvent, StoredEvent } from '@nodebatch/progress';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { GatewayHandle } from '../src/gateway.js';
import { ApiError } from '@nodebatch/client';
import { recordEventStream } from '@nodebatch/client/testing';
import type { ResponseBody } from './support.js';
import { api, startProducer, startTestGateway, testConfig, tokenFor } from './support.js';

let db: TestDatabase;
let gateway: GatewayHandle;
let producer: Runtime;
let alice: string;
let bob: string;
let admin: string;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'gw_api' });
  const config = testConfig(db.url, { ALLOWED_ORIGINS: 'http://allowed.example' });
  producer = await startProducer(config);
  gateway = await startTestGateway(config, { sse: { heartbeatMs: 100 } });
  [alice, bob, admin] = await Promise.all([tokenFor('alice'), tokenFor('bob'), tokenFor('root', 'admin')]);
});

afterAll(async () => {
  await gateway?.close();
  await producer?.close();
  await db?.drop();
});

const NODES = ['node-a', 'node-b', 'node-c'];

async function submit(token: string, nodes = NODES): Promise<string> {
  const response = await api(gateway, 'POST', '/api/v1/batches', {
    token,
    body: { action: 'cordon', nodes },
  });
  expect(response.status).toBe(202);
  return response.body.taskId as string;
}

/** What a worker appends for a batch in which node-b fails: seqs 2..9 after TaskCreated. */
function workerEvents(nodes = NODES): NewEvent[] {
  const events: NewEvent[] = [{ type: 'TaskStarted', data: { attempt: 1 } }];
  for (const node of nodes) {
    events.push({ type: 'NodeStarted', data: { node, attempt: 1 } });
    events.push(
      node === 'node-b'
        ? { type: 'NodeFailed', data: { node, error: 'simulated failure', retryable: false } }
        : { type: 'NodeSucceeded', data: { node } },
    );
  }
  events.push({ type: 'TaskCompleted', data: { succeeded: nodes.length - 1, failed: 1, skipped: 0 } });
  return events;
}

async function finishedTask(token = alice): Promise<string> {
  const taskId = await submit(token);
  await producer.notifier.append(taskId, workerEvents());
  return taskId;
}

const seqs = (messages: readonly { id: string | undefined }[]) => messages.map((m) => Number(m.id));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('authentication and ownership', () => {
  it('answers 401 without a token and with a badly signed one', async () => {
    expect((await api(gateway, 'GET', '/api/v1/tasks')).status).toBe(401);
    expect(
      (await api(gateway, 'POST', '/api/v1/batches', { body: { action: 'cordon', nodes: ['n1'] } })).status,
    ).toBe(401);
    const forged = await tokenFor('alice', 'admin', 'not-the-gateway-secret-0123456789');
    const response = await api(gateway, 'GET', '/api/v1/tasks', { token: forged });
    expect(response.status).toBe(401);
    expect(response.body.code).toBe('UNAUTHENTICATED');
    expect(JSON.stringify(response.body)).not.toContain(forged);
    const taskId = await finishedTask();
    await expect(recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`)).rejects.toMatchObject({
      status: 401,
    });
  });

  it("shows another user's task as 404 everywhere, and everything to an admin", async () => {
    const taskId = await finishedTask(alice);
    expect((await api(gateway, 'GET', `/api/v1/tasks/${taskId}`, { token: bob })).status).toBe(404);
    expect((await api(gateway, 'POST', `/api/v1/tasks/${taskId}/cancel`, { token: bob })).status).toBe(404);
    const refused = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
      headers: { authorization: `Bearer ${bob}` },
    }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(404);
    const unknown = await api(gateway, 'GET', '/api/v1/tasks/no-such-task', { token: bob });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('TASK_NOT_FOUND');

    const asAdmin = await api(gateway, 'GET', `/api/v1/tasks/${taskId}`, { token: admin });
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body).toMatchObject({
      taskId,
      userId: 'alice',
      status: 'completed',
      succeeded: 2,
      failed: 1,
    });
  });

  it("lists the caller's tasks only, filtered by status; an admin lists everyone's", async () => {
    const mine = await finishedTask(alice);
    const running = await submit(alice);
    const bobs = await submit(bob);
    const list = async (token: string, query = '') =>
      (
        (await api(gateway, 'GET', `/api/v1/tasks${query}`, { token })).body.tasks as { taskId: string }[]
      ).map((t) => t.taskId);
    const alices = await list(alice);
    expect(alices).toEqual(expect.arrayContaining([mine, running]));
    expect(alices).not.toContain(bobs);
    expect(await list(bob)).toEqual([bobs]);
    const completed = await list(alice, '?status=completed');
    expect(completed).toContain(mine);
    expect(completed).not.toContain(running);
    expect(await list(admin)).toEqual(expect.arrayContaining([mine, running, bobs]));
    expect((await api(gateway, 'GET', '/api/v1/tasks?status=bogus', { token: alice })).status).toBe(400);
  });

  it('takes the token from ?token= or the cookie on stream routes only', async () => {
    const taskId = await finishedTask(alice);
    const byQuery = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events?token=${alice}`);
    expect(await byQuery.ended).toBe(true);
    expect(byQuery.messages).toHaveLength(9);
    const byCookie = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
      headers: { cookie: `nodebatch_token=${alice}` },
    });
    expect(await byCookie.ended).toBe(true);
    expect((await api(gateway, 'GET', `/api/v1/tasks/${taskId}?token=${alice}`)).status).toBe(401);
  });
});

describe('POST /api/v1/batches', () => {
  it('answers 400 naming the offending field', async () => {
    const post = (body: unknown) => api(gateway, 'POST', '/api/v1/batches', { token: alice, body });
    const badName = await post({ action: 'cordon', nodes: ['node-a', 'Not_A_Node'] });
    expect(badName.status).toBe(400);
    expect(badName.body.field).toBe('body.nodes[1]');
    expect((await post({ action: 'reboot', nodes: ['node-a'] })).body.field).toBe('body.action');
    expect((await post({ action: 'cordon', nodes: [] })).body.field).toBe('body.nodes');
    expect((await post({ action: 'cordon', nodes: ['node-a', 'node-a'] })).body.field).toBe('body.nodes[1]');
    expect((await post({ action: 'cordon', nodes: ['node-a'], concurrency: 0 })).body.field).toBe(
      'body.concurrency',
    );
    const badParams = await post({
      action: 'label',
      nodes: ['node-a'],
      params: { labels: { 'bad key!': 'x' } },
    });
    expect(badParams.status).toBe(400);
    expect(badParams.body.field).toMatch(/^body\.params/);
  });

  it('appends TaskCreated for the caller and answers 202 with the task id', async () => {
    const response = await api(gateway, 'POST', '/api/v1/batches', {
      token: alice,
      body: { action: 'cordon', nodes: NODES, concurrency: 2 },
    });
    expect(response.status).toBe(202);
    const events = await producer.store.readTask(response.body.taskId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      seq: 1,
      type: 'TaskCreated',
      data: { userId: 'alice', action: 'cordon', nodes: NODES, concurrency: 2 },
    });
    const state = await api(gateway, 'GET', `/api/v1/tasks/${response.body.taskId}`, { token: alice });
    expect(state.body).toMatchObject({ status: 'pending', total: 3, done: 0, lastSeq: 1 });
  });
});

describe('SSE /api/v1/tasks/:id/events', () => {
  it('sends every event with id = seq and event = type, then ends after the terminal event', async () => {
    const taskId = await finishedTask();
    const stream = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await stream.ended).toBe(true);
    expect(seqs(stream.messages)).toEqual(range(1, 9));
    expect(stream.messages.at(-1)?.event).toBe('TaskCompleted');
    const first = JSON.parse(stream.messages[0]!.data) as StoredEvent;
    expect(first).toMatchObject({ taskId, seq: 1, type: 'TaskCreated' });
  });

  it('resumes after Last-Event-ID or ?after=N with exactly the events after it', async () => {
    const taskId = await finishedTask();
    const auth = { authorization: `Bearer ${alice}` };
    const byHeader = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
      headers: { ...auth, 'last-event-id': '3' },
    });
    await byHeader.ended;
    expect(seqs(byHeader.messages)).toEqual(range(4, 9));
    const byQuery = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events?after=7`, {
      headers: auth,
    });
    await byQuery.ended;
    expect(seqs(byQuery.messages)).toEqual(range(8, 9));
    // EventSource reconnects to its first URL with the newer Last-Event-ID: the header wins.
    const both = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events?after=2`, {
      headers: { ...auth, 'last-event-id': '8' },
    });
    await both.ended;
    expect(seqs(both.messages)).toEqual([9]);
    expect(
      (await api(gateway, 'GET', `/api/v1/tasks/${taskId}/events?after=-1`, { token: alice })).status,
    ).toBe(400);
  });

  it('delivers live events as they are appended and sends heartbeats while idle', async () => {
    const taskId = await submit(alice);
    const stream = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    await stream.waitFor((m) => m.length === 1);
    await vi.waitFor(() => expect(stream.comments).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
    const events = workerEvents();
    for (const event of events) await producer.notifier.append(taskId, [event]);
    expect(await stream.ended).toBe(true);
    expect(seqs(stream.messages)).toEqual(range(1, 9));
  });
});

describe('WebSocket /api/v1/progress/ws', () => {
  function connect(headers: Record<string, string> = { authorization: `Bearer ${alice}` }) {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/api/v1/progress/ws`, { headers });
    const messages: ResponseBody[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(data.toString())));
    return {
      socket,
      messages,
      open: new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
        socket.once('error', reject);
      }),
    };
  }

  it("carries the same events after `after`, then end; validates messages; hides other users' tasks", async () => {
    const taskId = await finishedTask(alice);
    const client = connect({ authorization: `Bearer ${alice}`, origin: 'http://allowed.example' });
    await client.open;
    client.socket.send(JSON.stringify({ type: 'subscribe', taskId, after: 4 }));
    await vi.waitFor(() => expect(client.messages.at(-1)).toEqual({ type: 'end', taskId }), {
      timeout: 10_000,
    });
    expect(client.messages.filter((m) => m.type === 'event').map((m) => m.event.seq)).toEqual(range(5, 9));

    client.socket.send('{"type":"subscribe"}');
    client.socket.send('not json');
    await vi.waitFor(() =>
      expect(client.messages.filter((m) => m.type === 'error' && m.code === 'INVALID_MESSAGE')).toHaveLength(
        2,
      ),
    );

    const bobs = connect({ authorization: `Bearer ${bob}` });
    await bobs.open;
    bobs.socket.send(JSON.stringify({ type: 'subscribe', taskId }));
    await vi.waitFor(() =>
      expect(bobs.messages).toEqual([
        expect.objectContaining({ type: 'error', code: 'TASK_NOT_FOUND', taskId }),
      ]),
    );
    client.socket.close();
    bobs.socket.close();
  });

  it('stops a task on unsubscribe', async () => {
    const taskId = await submit(alice);
    const client = connect();
    await client.open;
    client.socket.send(JSON.stringify({ type: 'subscribe', taskId }));
    await vi.waitFor(() => expect(client.messages).toHaveLength(1));
    client.socket.send(JSON.stringify({ type: 'unsubscribe', taskId }));
    // A second subscription proves the unsubscribe was processed (messages are handled in order).
    const other = await finishedTask(alice);
    client.socket.send(JSON.stringify({ type: 'subscribe', taskId: other }));
    await vi.waitFor(() => expect(client.messages.at(-1)).toEqual({ type: 'end', taskId: other }));
    await producer.notifier.append(taskId, workerEvents());
    const metrics = await api(gateway, 'GET', '/metrics');
    expect(metrics.body).toMatch(/nodebatch_gateway_active_streams\{kind="ws"\} 0/);
    expect(client.messages.filter((m) => m.type === 'event' && m.event.taskId === taskId)).toHaveLength(1);
    client.socket.close();
  });

  it('refuses an upgrade from an origin that is not allowed, and one without a token', async () => {
    await expect(
      connect({ authorization: `Bearer ${alice}`, origin: 'http://evil.example' }).open,
    ).rejects.toThrow('HTTP 403');
    await expect(connect({}).open).rejects.toThrow('HTTP 401');
  });
});

describe('cancel', () => {
  it('appends CancelRequested (202) and refuses an ended task (409)', async () => {
    const taskId = await submit(alice);
    const response = await api(gateway, 'POST', `/api/v1/tasks/${taskId}/cancel`, { token: alice });
    expect(response.status).toBe(202);
    const events = await producer.store.readTask(taskId);
    expect(events.at(-1)).toMatchObject({ type: 'CancelRequested', data: { by: 'alice' } });

    const ended = await finishedTask(alice);
    const conflict = await api(gateway, 'POST', `/api/v1/tasks/${ended}/cancel`, { token: alice });
    expect(conflict.status).toBe(409);
    expect(conflict.body.code).toBe('TASK_ALREADY_ENDED');
  });
});

describe('health, readiness, metrics and the page', () => {
  it('serves /healthz, /readyz with NotifierInfo, /metrics and /', async () => {
    expect((await api(gateway, 'GET', '/healthz')).status).toBe(200);
    const ready = await api(gateway, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ready',
      database: { ok: true },
      notifier: { configured: 'postgres', active: 'postgres', healthy: true, fallback: false },
    });
    await finishedTask();
    const metrics = await api(gateway, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/nodebatch_gateway_events_delivered_total\{kind="sse"\} [1-9]/);
    // Values, not names: the HELP and TYPE lines are there whatever happened.
    expect(metrics.body).toMatch(/^nodebatch_gateway_delivery_lag_seconds_count\{kind="sse"\} [1-9]/m);
    expect(metrics.body).toMatch(
      /nodebatch_notifier_active_transport\{transport="postgres",configured="postgres"\} 1/,
    );
    expect(metrics.body).toMatch(/^nodebatch_notifier_fallback 0$/m);
    expect(metrics.body).toMatch(/^nodebatch_notifier_healthy 1$/m);
    // No fallback happened: the transitions counter has no sample at all.
    expect(metrics.body).not.toMatch(/^nodebatch_notifier_fallback_transitions_total\{/m);
    const page = await api(gateway, 'GET', '/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>nodebatch</title>');
  });

  it("serves the console's modules and its built library from the gateway, and nothing else under /console/", async () => {
    const page = await api(gateway, 'GET', '/');
    // Scripts and styles from the gateway only: no inline code, no other origin.
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self';/);
    expect(page.body).toContain('src="/console/main.js"');
    const main = await api(gateway, 'GET', '/console/main.js');
    expect(main.status).toBe(200);
    expect(main.headers.get('content-type')).toMatch(/^text\/javascript/);
    // The fold comes from the core's bundle, not from a copy in the page.
    const watch = await api(gateway, 'GET', '/console/task-watch.js');
    expect(watch.body).toMatch(/import \{[^}]*reduceTask[^}]*\} from '\.\/console-lib\.js'/);
    const library = await api(gateway, 'GET', '/console/console-lib.js');
    expect(library.status).toBe(200);
    expect(library.body).toMatch(/reduceTask|foldTask/);
    for (const path of [
      '/console/nope.js',
      '/console/..%2Fsrc%2Fapp.ts',
      '/console/..%2F..%2Fpackage.json',
    ]) {
      expect((await api(gateway, 'GET', path)).status).toBe(404);
    }
  });
});

import { connect } from 'node:net';
import type { NewEvent } from '@nodebatch/progress';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { GatewayHandle } from '../src/gateway.js';
import { recordEventStream } from '@nodebatch/client/testing';
import { api, startProducer, startTestGateway, testConfig, tokenFor } from './support.js';

let db: TestDatabase;
let gateway: GatewayHandle;
let producer: Runtime;

// More than one page of catch-up (ProgressStreams reads 500 events at a
// time and emits them at once), as the default 1 MiB is for usual events.
const MAX_BUFFERED_BYTES = 2 * 1024 * 1024;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'gw_slow' });
  const config = testConfig(db.url);
  producer = await startProducer(config);
  gateway = await startTestGateway(config, {
    sse: { maxBufferedBytes: MAX_BUFFERED_BYTES },
    ws: { maxBufferedBytes: MAX_BUFFERED_BYTES },
  });
});

afterAll(async () => {
  await gateway?.close();
  await producer?.close();
  await db?.drop();
});

/** The body of a chunked HTTP/1.1 response, as far as it arrived. */
function dechunk(body: string): string {
  let text = '';
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    if (lineEnd < 0) return text;
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!Number.isFinite(size) || size === 0) return text;
    text += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

/** Ids of the complete SSE messages in `text` (a cut-off last message does not count). */
function completeIds(text: string): number[] {
  const blocks = text.split('\n\n');
  blocks.pop();
  return blocks.flatMap((block) => {
    const id = /^id: (\d+)$/m.exec(block)?.[1];
    return id === undefined ? [] : [Number(id)];
  });
}

let token: string;
let taskId: string;
let lastSeq: number;

/** A task with ~18 MB of events: more than the kernel's socket buffers on loopback take (about 4 MB) plus the gateway's 2 MiB budget. */
beforeAll(async () => {
  token = await tokenFor('slow');
  const created = await api(gateway, 'POST', '/api/v1/batches', {
    token,
    body: { action: 'cordon', nodes: ['node-a'] },
  });
  taskId = created.body.taskId as string;
  const message = 'x'.repeat(2 * 1024);
  const total = 9000;
  for (let batch = 0; batch < total / 500; batch++) {
    const events: NewEvent[] = Array.from({ length: 500 }, (_, i) => ({
      type: 'NodeProgress',
      data: { node: 'node-a', done: batch * 500 + i, total, message },
    }));
    await producer.notifier.append(taskId, events);
  }
  await producer.notifier.append(taskId, [
    { type: 'NodeSucceeded', data: { node: 'node-a' } },
    { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } },
  ]);
  lastSeq = 1 + total + 2;
});

async function slowClientDisconnects(kind: 'sse' | 'ws'): Promise<void> {
  await vi.waitFor(
    async () => {
      const metrics = (await api(gateway, 'GET', '/metrics')).body as string;
      expect(metrics).toMatch(
        new RegExp(`nodebatch_gateway_slow_client_disconnects_total\\{kind="${kind}"\\} 1\\b`),
      );
      expect(metrics).toMatch(new RegExp(`nodebatch_gateway_active_streams\\{kind="${kind}"\\} 0\\b`));
    },
    { timeout: 30_000, interval: 100 },
  );
}

it('disconnects an SSE client that stops reading once its buffer fills; it resumes with exactly the missing events', async () => {
  // A raw socket: Node's HTTP client discards what it buffered when the
  // connection is cut, and we want to see exactly what reached the client.
  const socket = connect(gateway.port, '127.0.0.1');
  socket.write(
    `GET /api/v1/tasks/${taskId}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`,
  );
  // Read nothing until the gateway gave up on us.
  socket.pause();
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => undefined);

  await slowClientDisconnects('sse');
  socket.resume();
  await closed;

  const raw = Buffer.concat(chunks).toString('utf8');
  expect(raw).toMatch(/^HTTP\/1\.1 200/);
  const firstIds = completeIds(dechunk(raw.slice(raw.indexOf('\r\n\r\n') + 4)));
  expect(firstIds.length).toBeGreaterThan(0);
  expect(firstIds.at(-1)).toBeLessThan(lastSeq);
  expect(firstIds).toEqual(Array.from({ length: firstIds.length }, (_, i) => i + 1));

  // The reader shares this process with the gateway, so on a busy machine a
  // resumed stream of ~15 MB may itself fall behind and be cut; a client then
  // resumes again, as EventSource does. Each round must make progress, so at
  // most lastSeq rounds are needed, however busy the machine is.
  const resumedIds: number[] = [];
  let after = firstIds.at(-1)!;
  let ended = false;
  for (let round = 0; round < lastSeq && !ended; round++) {
    const resumed = await recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
      headers: { authorization: `Bearer ${token}`, 'last-event-id': String(after) },
    });
    ended = await resumed.ended;
    const ids = resumed.messages.map((m) => Number(m.id));
    expect(ids.length, 'a resumed stream delivers something before it is cut').toBeGreaterThan(0);
    resumedIds.push(...ids);
    after = ids.at(-1)!;
  }
  expect(ended).toBe(true);
  const all = [...firstIds, ...resumedIds];
  expect(all).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
});

it('disconnects a WebSocket client that stops reading; it resubscribes with after and gets exactly the missing events', async () => {
  const wsUrl = `${gateway.url.replace('http', 'ws')}/api/v1/progress/ws`;
  const received: number[] = [];
  const stalled = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } });
  stalled.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { type: string; event?: { seq: number } };
    if (message.type === 'event') received.push(message.event!.seq);
  });
  await new Promise<void>((resolve, reject) => {
    stalled.once('open', () => resolve());
    stalled.once('error', reject);
  });
  stalled.send(JSON.stringify({ type: 'subscribe', taskId }));
  // Stop reading from the connection, as a frozen client would.
  stalled.pause();
  await slowClientDisconnects('ws');
  const closed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
  stalled.resume();
  await closed;
  expect(received).toEqual(Array.from({ length: received.length }, (_, i) => i + 1));
  expect(received.length).toBeLessThan(lastSeq);

  // As for SSE: a resumed connection that falls behind on a busy machine is
  // cut too, and the client subscribes again after what it has; every round
  // must make progress.
  const rest: number[] = [];
  let ended = false;
  for (let round = 0; round < lastSeq && !ended; round++) {
    const after = rest.at(-1) ?? received.at(-1) ?? 0;
    const again = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } });
    const before = rest.length;
    ended = await new Promise<boolean>((resolve) => {
      again.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { type: string; event?: { seq: number } };
        if (message.type === 'event') rest.push(message.event!.seq);
        if (message.type === 'end') resolve(true);
      });
      again.once('close', () => resolve(false));
      again.once('open', () => again.send(JSON.stringify({ type: 'subscribe', taskId, after })));
    });
    again.close();
    expect(rest.length, 'a resumed subscription delivers something before it is cut').toBeGreaterThan(before);
  }
  expect(ended).toBe(true);
  expect([...received, ...rest]).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
});

import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { StoredEvent } from '@nodebatch/progress';
import { pino } from 'pino';
import { Subject } from 'rxjs';
import { afterEach, expect, it } from 'vitest';
import { GatewayMetrics } from '../src/metrics.js';
import { SSE_DEFAULTS, streamEventsOverSse } from '../src/sse-stream.js';

let server: Server | undefined;
let socket: Socket | undefined;

afterEach(async () => {
  socket?.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

/** The chunks of a chunked HTTP/1.1 body (Node joins the writes of one corked turn into one). */
function chunksOf(raw: string): string[] {
  let rest = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const chunks: string[] = [];
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    if (lineEnd < 0) return chunks;
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!Number.isFinite(size) || size === 0 || rest.length < lineEnd + 2 + size) return chunks;
    chunks.push(rest.slice(lineEnd + 2, lineEnd + 2 + size));
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

const progress = (seq: number): StoredEvent => ({
  taskId: 't1',
  seq,
  position: seq,
  type: 'NodeProgress',
  time: new Date().toISOString(),
  data: { node: 'node-a', done: seq, total: 10 },
});

/**
 * Serves one SSE stream of `events$` and opens it. `writes()` counts the calls
 * on the real response: each costs Node's whole write path (headers state,
 * chunk framing, cork). Resolves once the stream is open (its first write done).
 */
async function openCountedStream(events$: Subject<StoredEvent>, metrics: GatewayMetrics) {
  let writes = 0;
  let opened!: () => void;
  const open = new Promise<void>((resolve) => (opened = resolve));
  server = createServer((_request, response) => {
    const write = response.write.bind(response) as (chunk: string) => boolean;
    response.write = ((chunk: string) => {
      writes++;
      return write(chunk);
    }) as typeof response.write;
    streamEventsOverSse(
      { response, events$, options: SSE_DEFAULTS, metrics, logger: pino({ level: 'silent' }) },
      () => undefined,
    );
    opened();
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  let raw = '';
  socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  socket.on('data', (data: string) => (raw += data));
  socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await open;
  return { writes: () => writes, raw: () => raw };
}

it('writes the events that become ready in the same turn to a client in one write', async () => {
  const events$ = new Subject<StoredEvent>();
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const stream = await openCountedStream(events$, metrics);
  const chunks = () => chunksOf(stream.raw());
  await expect.poll(() => chunks().length).toBe(1); // retry: and ": stream open"
  expect(stream.writes()).toBe(1);

  // One hint's events arrive together: one write for the three of them.
  events$.next(progress(2));
  events$.next(progress(3));
  events$.next(progress(4));
  await expect.poll(() => chunks().length).toBe(2);
  expect(stream.writes()).toBe(2);
  // A later turn is a write of its own.
  events$.next(progress(5));
  await expect.poll(() => chunks().length).toBe(3);
  expect(stream.writes()).toBe(3);

  const written = chunks();
  expect(written[1]!.match(/^id: \d+$/gm)).toEqual(['id: 2', 'id: 3', 'id: 4']);
  expect(written[2]!.match(/^id: \d+$/gm)).toEqual(['id: 5']);
  const delivered = await metrics.registry.getSingleMetricAsString(
    'nodebatch_gateway_events_delivered_total',
  );
  expect(delivered).toContain('nodebatch_gateway_events_delivered_total{kind="sse"} 4');
});

it('writes a turn as soon as its synchronous work and microtasks end, before other I/O callbacks run', async () => {
  // Behind a backlog the poll phase runs one socket read after another before
  // setImmediate callbacks: a write held until then waited for the whole backlog.
  const events$ = new Subject<StoredEvent>();
  const stream = await openCountedStream(events$, new GatewayMetrics({ defaultMetrics: false }));
  expect(stream.writes()).toBe(1);

  let checkPhaseRan = false;
  setImmediate(() => (checkPhaseRan = true));
  events$.next(progress(2));
  events$.next(progress(3));
  await Promise.resolve();
  expect(stream.writes()).toBe(2);
  expect(checkPhaseRan).toBe(false);
  // What becomes ready in a later microtask (a store read resolving) is a write of its own.
  events$.next(progress(4));
  await Promise.resolve();
  expect(stream.writes()).toBe(3);
});

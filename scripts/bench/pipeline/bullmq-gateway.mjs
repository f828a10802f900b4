/**
 * The BullMQ baseline's "gateway": what a user would build without nodebatch.
 * One QueueEvents listener per process turns 'progress' and 'completed' into
 * SSE messages for the subscribers of that job. Plain `node`, no loader. Prints {"port": N} when ready.
 *
 * Env: REDIS_URL, BENCH_QUEUE.
 */
import http from 'node:http';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const queueName = process.env.BENCH_QUEUE;
if (!queueName) throw new Error('BENCH_QUEUE is not set');

/** @type {Map<string, Set<http.ServerResponse>>} */
const subscribers = new Map();
const queueEvents = new QueueEvents(queueName, {
  connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
});

queueEvents.on('progress', ({ jobId, data }) => {
  const listeners = subscribers.get(jobId);
  if (!listeners) return;
  const message = `data: ${JSON.stringify(data)}\n\n`;
  for (const response of listeners) response.write(message);
});
queueEvents.on('completed', ({ jobId, returnvalue }) => {
  const listeners = subscribers.get(jobId);
  if (!listeners) return;
  const { seq } = /** @type {{seq: number}} */ (/** @type {unknown} */ (returnvalue));
  const message = `data: ${JSON.stringify({ seq, time: Date.now(), terminal: true })}\n\n`;
  for (const response of listeners) response.end(message);
  subscribers.delete(jobId);
});

const server = http.createServer((request, response) => {
  const match = /^\/jobs\/([^/]+)\/events/.exec(request.url ?? '');
  if (!match) {
    response.writeHead(404).end();
    return;
  }
  const jobId = decodeURIComponent(match[1] ?? '');
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  // Seq 1 says "subscribed", like a nodebatch stream's TaskCreated: the client starts timing after it.
  response.write(`data: ${JSON.stringify({ seq: 1, time: Date.now() })}\n\n`);
  let listeners = subscribers.get(jobId);
  if (!listeners) subscribers.set(jobId, (listeners = new Set()));
  listeners.add(response);
  response.on('close', () => listeners.delete(response));
});

await queueEvents.waitUntilReady();
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.once('SIGTERM', () => {
  server.close();
  void queueEvents.close().finally(() => process.exit(0));
});

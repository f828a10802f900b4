/**
 * The durable floor sampled while a run loads the machine (bench only): one
 * committed INSERT + notification round trip every BENCH_FLOOR_INTERVAL_MS,
 * on connections of its own, until SIGTERM; then one line
 * {"floor": {"p50", "p99", "max", "samples"}}. A process of its own, so that
 * neither the bench process nor the other observers delay what it sees.
 * BENCH_FLOOR_TRANSPORT postgres: INSERT + pg_notify in one transaction →
 * LISTEN (an append's NOTIFY); redis: the committed INSERT, then PUBLISH →
 * SUBSCRIBE (an append's PUBLISH after commit).
 * Env: DATABASE_URL, REDIS_URL, BENCH_FLOOR_TRANSPORT, BENCH_FLOOR_CHANNEL.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';

const transport = process.env.BENCH_FLOOR_TRANSPORT;
const channel = process.env.BENCH_FLOOR_CHANNEL ?? 'nb_bench_loaded_floor';
const intervalMs = Number(process.env.BENCH_FLOOR_INTERVAL_MS ?? '10');
if (transport !== 'postgres' && transport !== 'redis')
  throw new Error(`BENCH_FLOOR_TRANSPORT: expected postgres or redis, got ${transport}`);

const sender = new pg.Client({ connectionString: process.env.DATABASE_URL });
await sender.connect();
await sender.query(
  'CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, payload text NOT NULL)',
);
/** @type {((payload: string) => void) | undefined} */
let pending;
/** @type {(payload: string) => Promise<unknown>} */
let send;
if (transport === 'postgres') {
  const listener = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await listener.connect();
  await listener.query(`LISTEN "${channel}"`);
  listener.on('notification', (message) => pending?.(message.payload ?? ''));
  send = (payload) =>
    sender.query(
      `BEGIN; INSERT INTO bench_floor (payload) VALUES ('${payload}'); SELECT pg_notify('${channel}', '${payload}'); COMMIT`,
    );
} else {
  const subscriber = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const publisher = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await subscriber.subscribe(channel);
  subscriber.on('message', (_channel, message) => pending?.(message));
  send = async (payload) => {
    await sender.query(`BEGIN; INSERT INTO bench_floor (payload) VALUES ('${payload}'); COMMIT`);
    await publisher.publish(channel, payload);
  };
}

/** @type {number[]} */
const samples = [];
let stopped = false;
process.once('SIGTERM', () => (stopped = true));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for (let i = 0; !stopped; i++) {
  const arrived = new Promise((resolve) => (pending = resolve));
  const started = performance.now();
  await send(String(i));
  if ((await arrived) !== String(i)) throw new Error(`loaded floor: expected ${i}`);
  samples.push(performance.now() - started);
  await sleep(intervalMs);
}
samples.sort((a, b) => a - b);
const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? null;
process.stdout.write(
  `${JSON.stringify({ floor: { p50: at(0.5), p99: at(0.99), max: samples.at(-1) ?? null, samples: samples.length } })}\n`,
);
process.exit(0);

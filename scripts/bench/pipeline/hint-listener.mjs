/**
 * The stage table's "hint at a listener" observer (bench only): a LISTEN /
 * SUBSCRIBE connection on the transport's channel, as a gateway holds one,
 * in a process of its own so that neither the bench process nor the SSE
 * clients delay the arrivals it times. For each notification of a followed
 * task (alone, or in a combined one) that carries its events inline it records the arrival time minus the
 * last event's append time (events announced by reference are not timed).
 * Driven over the IPC channel (advanced serialization) by scripts/bench/stage-timing.ts:
 *   {type: 'follow', taskIds} → {type: 'following'}: only these tasks count from now on
 *     (the samples so far are dropped); the event-loop delay of this process is sampled from here;
 *   {type: 'report'} → {type: 'report', samples: Float64Array, delay: {p50, p99, count} | undefined}.
 * Env: BENCH_HINT_TRANSPORT (postgres | redis), DATABASE_URL, REDIS_URL.
 * Prints {"ready": true} once it listens.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pg from 'pg';

if (!process.send) throw new Error('hint-listener.mjs runs as a bench child with an IPC channel');
const send = process.send.bind(process);

/** The default channels of the transports (packages/runtime createRuntime). */
const PG_CHANNEL = 'nodebatch_progress';
const REDIS_CHANNEL = 'nodebatch:progress';

const wallNow = () => performance.timeOrigin + performance.now();

/** @type {number[]} */
let samples = [];
/** @type {Set<string>} */
let following = new Set();
/** @type {import('node:perf_hooks').IntervalHistogram | undefined} */
let delay;

/** @param {string} payload */
function record(payload) {
  const arrival = wallNow();
  let message;
  try {
    message = JSON.parse(payload);
  } catch {
    return;
  }
  // A combined notification (PROGRESS_COMBINED_HINTS) holds several tasks' messages.
  for (const task of Array.isArray(message?.tasks) ? message.tasks : [message]) {
    if (typeof task?.taskId !== 'string' || !following.has(task.taskId)) continue;
    const last = Array.isArray(task.events) ? task.events[task.events.length - 1] : undefined;
    if (typeof last?.time !== 'string') continue; // sent by reference: nothing to time
    samples.push(arrival - Date.parse(last.time));
  }
}

const transport = process.env.BENCH_HINT_TRANSPORT;
if (transport === 'postgres') {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  client.on('notification', (message) => record(message.payload ?? ''));
  await client.query(`LISTEN ${PG_CHANNEL}`);
} else if (transport === 'redis') {
  const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
  await client.connect();
  client.on('message', (_channel, message) => record(message));
  await client.subscribe(REDIS_CHANNEL);
} else throw new Error(`BENCH_HINT_TRANSPORT: expected postgres or redis, got ${transport}`);

process.on('message', (/** @type {any} */ command) => {
  if (command.type === 'follow') {
    samples = [];
    following = new Set(command.taskIds);
    delay?.disable();
    delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    send({ type: 'following' });
  } else if (command.type === 'report') {
    delay?.disable();
    send({
      type: 'report',
      samples: Float64Array.from(samples),
      delay:
        delay && delay.count > 0
          ? { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, count: delay.count }
          : undefined,
    });
  } else throw new Error(`hint-listener: unknown command ${JSON.stringify(command)}`);
});
// The bench went away (or ended): nothing is left to report to.
process.on('disconnect', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

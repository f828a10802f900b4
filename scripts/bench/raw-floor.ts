import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pg from 'pg';
import { LatencyRecorder } from './latency-recorder.js';

export interface RoundTrip {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

/**
 * The floor under any notification: a bare `pg_notify` from one connection
 * to a LISTEN on another, one at a time, timed from the send to the
 * notification's arrival.
 */
export async function pgNotifyRoundTrip(
  databaseUrl: string,
  samples: number,
  channel: string,
): Promise<RoundTrip> {
  return timedNotifications(databaseUrl, samples, channel, (sender, payload) =>
    sender.query('SELECT pg_notify($1, $2)', [channel, payload]),
  );
}

/**
 * The floor under a durable append: a row written and a pg_notify sent in
 * one transaction, committed (with this server's synchronous_commit and
 * fsync), timed from the send to the notification's arrival. A bare
 * pg_notify writes nothing, so it never waits for the disk; an append does.
 */
export async function pgCommitNotifyRoundTrip(
  databaseUrl: string,
  samples: number,
  channel: string,
): Promise<RoundTrip> {
  const setup = new pg.Client({ connectionString: databaseUrl });
  await setup.connect();
  try {
    await setup.query(
      'CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, payload text NOT NULL)',
    );
  } finally {
    await setup.end();
  }
  return timedNotifications(databaseUrl, samples, channel, (sender, payload) =>
    // One round trip, as an append's transaction is to the client that waits for it.
    sender.query(
      `BEGIN; INSERT INTO bench_floor (payload) VALUES ('${payload}'); SELECT pg_notify('${channel}', '${payload}'); COMMIT`,
    ),
  );
}

async function timedNotifications(
  databaseUrl: string,
  samples: number,
  channel: string,
  send: (sender: pg.Client, payload: string) => Promise<unknown>,
): Promise<RoundTrip> {
  const listener = new pg.Client({ connectionString: databaseUrl });
  const sender = new pg.Client({ connectionString: databaseUrl });
  await Promise.all([listener.connect(), sender.connect()]);
  try {
    await listener.query(`LISTEN "${channel}"`);
    const recorder = new LatencyRecorder();
    let pending: ((payload: string) => void) | undefined;
    listener.on('notification', (message) => pending?.(message.payload ?? ''));
    for (let i = 0; i < samples; i++) {
      const arrived = new Promise<string>((resolve) => (pending = resolve));
      const started = performance.now();
      await send(sender, String(i));
      const payload = await arrived;
      if (payload !== String(i)) throw new Error(`pg_notify round trip: expected ${i}, got ${payload}`);
      // Warm-up: the first samples pay for plan caching and TCP slow start.
      if (i >= 20) recorder.add(performance.now() - started);
    }
    return { ...recorder.summary(), samples: recorder.count };
  } finally {
    await Promise.all([listener.end(), sender.end()]);
  }
}

/** The same for a bare Redis PUBLISH to a SUBSCRIBE on another connection. */
export async function redisPublishRoundTrip(
  redisUrl: string,
  samples: number,
  channel: string,
): Promise<RoundTrip> {
  const subscriber = new Redis(redisUrl, { lazyConnect: true });
  const publisher = new Redis(redisUrl, { lazyConnect: true });
  await Promise.all([subscriber.connect(), publisher.connect()]);
  try {
    await subscriber.subscribe(channel);
    const recorder = new LatencyRecorder();
    let pending: ((payload: string) => void) | undefined;
    subscriber.on('message', (_channel: string, message: string) => pending?.(message));
    for (let i = 0; i < samples; i++) {
      const arrived = new Promise<string>((resolve) => (pending = resolve));
      const started = performance.now();
      await publisher.publish(channel, String(i));
      const payload = await arrived;
      if (payload !== String(i)) throw new Error(`Redis PUBLISH round trip: expected ${i}, got ${payload}`);
      if (i >= 20) recorder.add(performance.now() - started);
    }
    return { ...recorder.summary(), samples: recorder.count };
  } finally {
    subscriber.disconnect();
    publisher.disconnect();
  }
}

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '@nodebatch/config';
import { recordEventStream } from '@nodebatch/client/testing';
import type { EventStreamRecording } from '@nodebatch/client/testing';
import { startGateway } from '@nodebatch/gateway';
import type { GatewayHandle } from '@nodebatch/gateway';
import { HintKey } from '@nodebatch/progress';
import type { NewEvent, StoredEvent, TransportType } from '@nodebatch/progress';
import { createRuntime } from '@nodebatch/runtime';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { JWT_SECRET, tokenFor } from './services.js';
import { withClient } from '../transports/support.js';

/**
 * Invariant 8 end to end: a notification sent by anyone who can reach the
 * channel (any database login, anyone on Redis) cannot put an event in front
 * of a client that the log does not hold. The producer is a runtime like a
 * worker's; the subscriber an SSE client of a real gateway. Both have a hint
 * key, as a deployment that wants no log read per hint does: the producer's
 * events reach the client authenticated, while the forgeries, one without a
 * MAC and one with a MAC made with another key, go to the log check.
 */

const WAIT = { timeout: 60_000, interval: 50 };

interface Setup {
  db: TestDatabase;
  producer: Runtime;
  gateway: GatewayHandle;
  close(): Promise<void>;
}

let setup: Setup | undefined;

afterEach(async () => {
  await setup?.close();
  setup = undefined;
}, 60_000);

async function start(transport: Exclude<TransportType, 'polling'>): Promise<Setup & { channel: string }> {
  const db = await createTestDatabase({ prefix: 'forged_hint' });
  const channel = transport === 'postgres' ? uniqueName('forged_pg') : uniqueName('forged:redis');
  const config = loadConfig({
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      PROGRESS_NOTIFY_TYPE: transport,
      AUTH_JWT_SECRET: JWT_SECRET,
      PROGRESS_HINT_KEY: randomBytes(32).toString('base64'),
      QUEUE_NAME: uniqueName('forged_q'),
      PORT: '0',
    },
    cwd: '/nonexistent',
  }).config;
  const channels = transport === 'postgres' ? { postgresChannel: channel } : { redisChannel: channel };
  const logger = pino({ level: 'warn' });
  const producer = await createRuntime({ config, logger, retention: false, ...channels });
  const gateway = await startGateway({ config, logger, host: '127.0.0.1', channels });
  const current: Setup = {
    db,
    producer,
    gateway,
    close: async () => {
      await gateway.close();
      await producer.close();
      await db.drop();
    },
  };
  setup = current;
  return { ...current, channel };
}

/** The value of one series of the gateway's /metrics, 0 when absent. */
async function metric(gateway: GatewayHandle, series: string): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const REJECTED_NOT_IN_LOG = 'nodebatch_progress_hint_events_total{outcome="rejected",reason="not-in-log"}';
const AUTHENTICATED = 'nodebatch_progress_hint_events_total{outcome="authenticated",reason=""}';
const MATCHED = 'nodebatch_progress_hint_events_total{outcome="matched",reason=""}';
const MAC_MISSING = 'nodebatch_progress_hint_unauthenticated_events_total{reason="missing"}';
const MAC_INVALID = 'nodebatch_progress_hint_unauthenticated_events_total{reason="invalid"}';

const created: NewEvent = {
  type: 'TaskCreated',
  data: { userId: 'alice', action: 'cordon', nodes: ['node-1'], params: {} },
};

/** The forged terminal event exactly as the issue describes it, for the seq after the head. */
function forgedCompletion(seq: number): Omit<StoredEvent, 'taskId'> {
  return {
    seq,
    position: 999_999,
    type: 'TaskCompleted',
    time: new Date().toISOString(),
    data: { succeeded: 1, failed: 0, skipped: 0 },
  };
}

async function subscribe(gateway: GatewayHandle, taskId: string): Promise<EventStreamRecording> {
  const token = await tokenFor('alice', 'admin');
  return recordEventStream(`${gateway.url}/api/v1/tasks/${taskId}/events`, {
    headers: { authorization: `Bearer ${token}` },
  });
}

async function runScenario(
  transport: Exclude<TransportType, 'polling'>,
  sendForged: (channel: string, payload: string) => Promise<void>,
): Promise<void> {
  const { producer, gateway, channel } = await start(transport);
  const taskId = uniqueName('task');
  await producer.notifier.append(taskId, [created, { type: 'TaskStarted', data: { attempt: 1 } }]);
  const sse = await subscribe(gateway, taskId);
  await sse.waitFor((messages) => messages.length >= 2);

  const event = forgedCompletion(3);
  // A key of the forger's own: the MAC is well formed, and does not verify with the gateway's key.
  const mac = new HintKey(randomBytes(32)).sign({
    taskId,
    seq: 3,
    events: [{ taskId, ...event } as StoredEvent],
  });
  const forgeries = [
    { signature: {}, counted: MAC_MISSING },
    { signature: { mac }, counted: MAC_INVALID },
  ];
  for (const [index, { signature, counted }] of forgeries.entries()) {
    const forged =
      transport === 'postgres'
        ? { taskId, seq: 3, events: [event], ...signature }
        : { v: 1, kind: 'events', taskId, seq: 3, events: [{ taskId, ...event }], ...signature };
    await sendForged(channel, JSON.stringify(forged));
    // The gateway received the hint, counted its MAC as missing or invalid, checked its event against
    // the log and dropped it.
    await vi.waitFor(async () => {
      expect(await metric(gateway, counted)).toBe(1);
      expect(await metric(gateway, REJECTED_NOT_IN_LOG)).toBe(index + 1);
    }, WAIT);
    expect(sse.messages.map((m) => m.event)).toEqual(['TaskCreated', 'TaskStarted']);
  }

  await producer.notifier.append(taskId, [
    { type: 'NodeStarted', data: { node: 'node-1', attempt: 1 } },
    { type: 'NodeSucceeded', data: { node: 'node-1' } },
    { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } },
  ]);
  expect(await sse.ended).toBe(true);
  const received = sse.messages.map((m) => JSON.parse(m.data) as StoredEvent);
  // Identical to the log: the same five events, the real seq 3 included, nothing else.
  expect(received).toEqual(await producer.store.readTask(taskId));
  expect(received.map((e) => e.type)).toEqual([
    'TaskCreated',
    'TaskStarted',
    'NodeStarted',
    'NodeSucceeded',
    'TaskCompleted',
  ]);
  // The producer's own hint carried its three events signed: taken without a log check.
  expect(await metric(gateway, AUTHENTICATED)).toBeGreaterThanOrEqual(3);
  expect(await metric(gateway, MATCHED)).toBe(0);
}

describe('a forged notification reaches no client (invariant 8)', () => {
  it('postgres: NOTIFY of a fake TaskCompleted from any database login, unsigned or signed with another key, does not end an SSE stream', async () => {
    await runScenario('postgres', (channel, payload) =>
      withClient(setup!.db.url, async (client) => {
        await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
      }),
    );
  }, 180_000);

  it('redis: PUBLISH of a fake TaskCompleted on the channel, unsigned or signed with another key, does not end an SSE stream', async () => {
    await runScenario('redis', async (channel, payload) => {
      const redis = new Redis(sharedRedisUrl(), { lazyConnect: true });
      try {
        await redis.connect();
        await redis.publish(channel, payload);
      } finally {
        redis.disconnect();
      }
    });
  }, 180_000);
});

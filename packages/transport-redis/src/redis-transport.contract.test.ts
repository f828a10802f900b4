import { createStoreFixture } from '@nodebatch/event-store/testing';
import { transportContract } from '@nodebatch/progress/testing';
import { sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import { pino } from 'pino';
import { createRedisTransport } from './redis-transport.js';

const url = new URL(sharedRedisUrl());

// One channel for the suite: its sender and receiver transports must reach each other.
const channel = uniqueName('progress');

transportContract('redis', {
  setup: () => createStoreFixture(),
  signsHints: true,
  create: (store, { hintKey } = {}) =>
    createRedisTransport({
      redis: { host: url.hostname, port: Number(url.port || 6379) },
      channel,
      store,
      logger: pino({ level: 'silent' }),
      hintKey,
      // The position check covers lost PUBLISHes, and this suite loses none. Run every second, it could
      // announce an append between its commit and its PUBLISH, and the suite asserts when the log is read.
      catchUpIntervalMs: 60_000,
    }),
  createUnreachable: (store) => ({
    transport: createRedisTransport({
      redis: { host: '127.0.0.1', port: 1, password: 'hunter2-secret', retryStrategy: () => 50 },
      channel: uniqueName('progress'),
      store,
      logger: pino({ level: 'silent' }),
    }),
    names: /127\.0\.0\.1:1: .*ECONNREFUSED/,
    secret: 'hunter2-secret',
  }),
});

import { createStoreFixture } from '@nodebatch/event-store/testing';
import { transportContract } from '@nodebatch/progress/testing';
import { sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import { pino } from 'pino';
import { createRedisTransport } from './redis-transport.js';

const url = new URL(sharedRedisUrl());

transportContract('redis', {
  setup: () => createStoreFixture(),
  create: (store) =>
    createRedisTransport({
      redis: { host: url.hostname, port: Number(url.port || 6379) },
      channel: uniqueName('progress'),
      store,
      logger: pino({ level: 'silent' }),
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

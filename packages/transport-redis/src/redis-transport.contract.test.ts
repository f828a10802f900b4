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
});

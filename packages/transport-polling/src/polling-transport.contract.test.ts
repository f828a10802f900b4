import { createStoreFixture } from '@nodebatch/event-store/testing';
import { transportContract } from '@nodebatch/progress/testing';
import { pino } from 'pino';
import { createPollingTransport } from './polling-transport.js';

transportContract('polling', {
  setup: () => createStoreFixture(),
  create: (store) => createPollingTransport({ store, intervalMs: 50, logger: pino({ level: 'silent' }) }),
});

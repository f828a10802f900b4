import { createStoreFixture, type StoreFixture } from '@nodebatch/event-store/testing';
import { transportContract } from '@nodebatch/progress/testing';
import { uniqueName } from '@nodebatch/testkit';
import { pino } from 'pino';
import { createPostgresTransport } from './postgres-transport.js';

let fixture: StoreFixture;

transportContract('postgres', {
  setup: async () => (fixture = await createStoreFixture()),
  create: (store) =>
    createPostgresTransport({
      pool: fixture.pool,
      connection: { connectionString: fixture.database.url, application_name: uniqueName('listener') },
      store,
      channel: uniqueName('progress'),
      logger: pino({ level: 'silent' }),
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
    }),
});

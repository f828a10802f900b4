import { createStoreFixture, type StoreFixture } from '@nodebatch/event-store/testing';
import { transportContract } from '@nodebatch/progress/testing';
import { freePort, uniqueName } from '@nodebatch/testkit';
import { pino } from 'pino';
import { createPostgresTransport } from './postgres-transport.js';

let fixture: StoreFixture;

// One channel for the suite: its sender and receiver transports must reach each other.
const channel = uniqueName('progress');

transportContract('postgres', {
  setup: async () => (fixture = await createStoreFixture()),
  signsHints: true,
  create: (store, { hintKey } = {}) =>
    createPostgresTransport({
      pool: fixture.pool,
      connection: { connectionString: fixture.database.url, application_name: uniqueName('listener') },
      store,
      channel,
      logger: pino({ level: 'silent' }),
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
      hintKey,
    }),
  createUnreachable: async (store) => {
    const port = await freePort();
    return {
      transport: createPostgresTransport({
        pool: fixture.pool,
        connection: { host: '127.0.0.1', port, user: 'someone', password: 'sekret-pw', database: 'nodb' },
        store,
        channel: uniqueName('progress'),
        logger: pino({ level: 'silent' }),
      }),
      names: new RegExp(`127\\.0\\.0\\.1:${port}/nodb as someone.*ECONNREFUSED`),
      secret: 'sekret-pw',
    };
  },
});

import { createStoreFixture, type StoreFixture } from '@nodebatch/event-store/testing';
import { transportContract } from '@nodebatch/progress/testing';
import { freePort, uniqueName } from '@nodebatch/testkit';
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

import { createEventStore, runMigrations } from '@nodebatch/event-store';
import { transportContract } from '@nodebatch/progress/testing';
import { createTestDatabase, uniqueName } from '@nodebatch/testkit';
import pg from 'pg';
import { pino } from 'pino';
import { createPostgresTransport } from './postgres-transport.js';

let pool: pg.Pool;
let url: string;

transportContract('postgres', {
  setup: async () => {
    const db = await createTestDatabase({ prefix: 'tpgc' });
    url = db.url;
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    await runMigrations(pool);
    return {
      store: createEventStore({ pool }),
      close: async () => {
        await pool.end();
        await db.drop();
      },
    };
  },
  create: (store) =>
    createPostgresTransport({
      pool,
      connection: { connectionString: url, application_name: uniqueName('listener') },
      store,
      channel: uniqueName('progress'),
      logger: pino({ level: 'silent' }),
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
    }),
});

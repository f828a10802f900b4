import { createEventStore, runMigrations } from '@nodebatch/event-store';
import { transportContract } from '@nodebatch/progress/testing';
import { createTestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
import { pino } from 'pino';
import { createPollingTransport } from './polling-transport.js';

transportContract('polling', {
  setup: async () => {
    const db = await createTestDatabase({ prefix: 'tpollc' });
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    await runMigrations(pool);
    return {
      store: createEventStore({ pool }),
      close: async () => {
        await pool.end();
        await db.drop();
      },
    };
  },
  create: (store) => createPollingTransport({ store, intervalMs: 50, logger: pino({ level: 'silent' }) }),
});

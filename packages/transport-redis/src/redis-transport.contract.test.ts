import { createEventStore, runMigrations } from '@nodebatch/event-store';
import { transportContract } from '@nodebatch/progress/testing';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import pg from 'pg';
import { pino } from 'pino';
import { createRedisTransport } from './redis-transport.js';

const url = new URL(sharedRedisUrl());

transportContract('redis', {
  setup: async () => {
    const db = await createTestDatabase({ prefix: 'tredisc' });
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
  create: (store) =>
    createRedisTransport({
      redis: { host: url.hostname, port: Number(url.port || 6379) },
      channel: uniqueName('progress'),
      store,
      logger: pino({ level: 'silent' }),
    }),
});

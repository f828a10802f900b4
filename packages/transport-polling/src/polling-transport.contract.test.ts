import { createEventStore } from '@nodebatch/event-store';
import { createStoreFixture, type StoreFixture } from '@nodebatch/event-store/testing';
import { transportContract } from '@nodebatch/progress/testing';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll } from 'vitest';
import { createPollingTransport } from './polling-transport.js';

let fixture: StoreFixture;
const pools: pg.Pool[] = [];

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
});

transportContract('polling', {
  setup: async () => (fixture = await createStoreFixture()),
  create: (store) => createPollingTransport({ store, intervalMs: 50, logger: pino({ level: 'silent' }) }),
  // Polling's server is the event log: a store over a database that does not exist.
  createUnreachable: () => {
    const missing = new URL(fixture.database.url);
    missing.pathname = `${missing.pathname}_missing`;
    missing.password = 'polling-secret-pw';
    const pool = new pg.Pool({ connectionString: missing.toString(), max: 1 });
    pools.push(pool);
    return {
      transport: createPollingTransport({
        store: createEventStore({ pool }),
        intervalMs: 50,
        logger: pino({ level: 'silent' }),
      }),
      names: 'does not exist',
      secret: 'polling-secret-pw',
    };
  },
});

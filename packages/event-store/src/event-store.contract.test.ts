import { eventStoreContract } from '@nodebatch/progress/testing';
import { createStoreFixture } from './test-support/store-fixture.js';

eventStoreContract('PostgreSQL event store', {
  create: async (limits) => {
    const fixture = await createStoreFixture(limits);
    return { store: fixture.store, close: () => fixture.close() };
  },
});

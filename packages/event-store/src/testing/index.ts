/** Test fixtures for code built on the PostgreSQL event store; never imported by production code. */
export * from './store-fixture.js';

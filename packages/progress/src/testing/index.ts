/**
 * Test doubles and suites for code built on @nodebatch/progress; never
 * imported by production code. `eventStoreContract` and `transportContract`
 * are the suites every EventStore and every Transport runs against its real
 * server.
 */
export * from './event-store-contract.js';
export * from './instrumented-reader.js';
export * from './manual-hint-source.js';
export * from './manual-scheduler.js';
export * from './random.js';
export * from './scripted-transport.js';
export * from './stored-events.js';
export * from './subscribers.js';
export * from './transport-contract.js';
export * from './unreliable-hint-source.js';

export {};
export * from './queue/index.js';
export * from './diagnostics.js';
export * from './create-runtime.js';
export { supportsShardedPubSub, type PubSubKind } from '@nodebatch/transport-redis';

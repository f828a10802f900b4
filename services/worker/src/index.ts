export * from './action-concurrency.js';
export * from './batch-task-runner.js';
export * from './event-batcher.js';
export * from './node-action.js';
export * from './node-retry-policy.js';
export * from './start-worker.js';
export * from './task-events.js';
export * from './worker-health.js';

export * from './backoff.js';
export * from './notifier.js';

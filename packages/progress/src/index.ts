export * from './errors.js';
export * from './events.js';
export * from './store.js';
export * from './transport.js';
export * from './notifier/index.js';

export * from './api-types.js';
export * from './backoff.js';
export * from './errors.js';
export * from './event-stream.js';
export * from './nodebatch-client.js';
export * from './sse-parser.js';
export * from './token-source.js';
export * from './watch-task.js';

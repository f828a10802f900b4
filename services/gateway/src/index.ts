export * from './auth.js';
export * from './batch-request.js';
export * from './errors.js';
export * from './metrics.js';
export * from './services.js';
export * from './sse-stream.js';
export * from './ws-session.js';

export { createPollingTransport, DEFAULT_POLL_BATCH_SIZE } from './polling-transport.js';
export type { PollingTransportOptions } from './polling-transport.js';

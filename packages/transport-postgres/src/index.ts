export * from './postgres-transport.js';
export { MAX_PAYLOAD_BYTES, encodeEvents, encodeTransaction, decodeNotification } from './payload.js';
export type { Notification, DecodeResult, EncodeEventsOptions, EncodeTransactionOptions } from './payload.js';

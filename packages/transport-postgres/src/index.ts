export * from './postgres-transport.js';
export { MAX_PAYLOAD_BYTES, encodeEvents, decodeNotification } from './payload.js';
export type { Notification, DecodeResult, EncodeEventsOptions } from './payload.js';

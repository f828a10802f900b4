export * from './record-event-stream.js';

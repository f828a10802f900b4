export * from './batch-consumer.js';
export * from './batch-job-data.js';
export * from './batch-queue.js';
export * from './queue-backend.js';

export {};
export * from './queue/index.js';

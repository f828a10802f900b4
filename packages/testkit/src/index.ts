export * from './shared-servers.js';

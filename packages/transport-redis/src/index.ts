export {
  createRedisTransport,
  DEFAULT_CATCH_UP_INTERVAL_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_REDIS_CHANNEL,
} from './redis-transport.js';
export type { RedisTransport, RedisTransportOptions } from './redis-transport.js';

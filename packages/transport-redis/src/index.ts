export {
  createRedisTransport,
  DEFAULT_CATCH_UP_INTERVAL_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_REDIS_CHANNEL,
  supportsShardedPubSub,
} from './redis-transport.js';
export type { PubSubKind, RedisTransport, RedisTransportOptions } from './redis-transport.js';

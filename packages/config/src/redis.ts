import type { RedisOptions } from 'ioredis';
import type { RedisConfig } from './nodebatch-config.js';

/** What may be shown about a Redis connection: everything but the password. */
export interface RedisDescription {
  host: string;
  port: number;
  db: number;
  username?: string;
  tls: boolean;
  passwordSet: boolean;
}

/** ioredis options for the configured Redis; callers add their own retry and BullMQ settings. */
export function redisOptions(redis: RedisConfig): RedisOptions {
  return {
    host: redis.host,
    port: redis.port,
    db: redis.db,
    ...(redis.username !== undefined ? { username: redis.username } : {}),
    ...(redis.password !== undefined ? { password: redis.password } : {}),
    ...(redis.tls ? { tls: {} } : {}),
  };
}

export function describeRedis(redis: RedisConfig): RedisDescription {
  return {
    host: redis.host,
    port: redis.port,
    db: redis.db,
    ...(redis.username !== undefined ? { username: redis.username } : {}),
    tls: redis.tls ?? false,
    passwordSet: redis.password !== undefined,
  };
}

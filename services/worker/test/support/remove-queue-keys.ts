import { QUEUE_REDIS_PREFIX } from '@nodebatch/runtime';
import { Redis } from 'ioredis';

/** Deletes one test queue's keys from the shared Redis (never anything else: the pattern names the queue). */
export async function removeQueueKeys(redisUrl: string, queueName: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    for await (const keys of redis.scanStream({
      match: `${QUEUE_REDIS_PREFIX}:${queueName}:*`,
      count: 500,
    })) {
      if ((keys as string[]).length > 0) await redis.del(...(keys as string[]));
    }
  } finally {
    redis.disconnect();
  }
}

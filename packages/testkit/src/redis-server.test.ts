import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortFree } from './free-port.js';
import { startRedis, type RedisServer } from './redis-server.js';

/** One command on a fresh connection that gives up instead of retrying forever. */
async function command<T>(url: string, run: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await run(redis);
  } finally {
    redis.disconnect();
  }
}

describe('startRedis', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('runs a private redis-server without persistence on its own port', async () => {
    expect(server.port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    const config = await command(server.url, (redis) => redis.config('GET', 'save') as Promise<string[]>);
    expect(config).toEqual(['save', '']);
    expect(
      await command(server.url, (redis) => redis.config('GET', 'appendonly') as Promise<string[]>),
    ).toEqual(['appendonly', 'no']);
  });

  it('comes back on the same port after kill -9, empty', async () => {
    await command(server.url, (redis) => redis.set('k', 'v'));
    const subscriber = new Redis(server.url, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
    subscriber.on('error', () => undefined);
    await subscriber.subscribe('ch');
    const closed = new Promise<void>((resolve) => subscriber.once('end', resolve));
    const port = server.port;

    await server.kill();
    expect(server.running).toBe(false);
    await closed;
    await expect(command(server.url, (redis) => redis.ping())).rejects.toThrow();

    await server.start();
    expect(server.port).toBe(port);
    expect(await command(server.url, (redis) => redis.get('k'))).toBeNull();
  });

  it('stops, starts and restarts', async () => {
    await server.stop();
    expect(await isPortFree(server.port)).toBe(true);
    await server.start();
    expect(await command(server.url, (redis) => redis.ping())).toBe('PONG');
    await server.restart();
    expect(await command(server.url, (redis) => redis.ping())).toBe('PONG');
  });

  it('destroy() kills the server and removes its directory', async () => {
    const other = await startRedis();
    const { dir, port } = other;
    await other.destroy();
    expect(existsSync(dir)).toBe(false);
    expect(await isPortFree(port)).toBe(true);
  });
});

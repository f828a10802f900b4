import { Redis } from 'ioredis';
import pg from 'pg';

/** Whether a server answers as the tests need it to, and if not, why. */
type ProbeResult = { ok: true } | { ok: false; listening: boolean; reason: string };

const NOT_LISTENING = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENOTFOUND', 'EADDRNOTAVAIL']);

function failure(error: unknown): ProbeResult {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  return { ok: false, listening: !(code && NOT_LISTENING.has(code)), reason: message };
}

/** Connects and runs SELECT 1: a port that is open but refuses our user is not usable. */
export async function probePostgres(url: string, timeoutMs = 5000): Promise<ProbeResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { ok: true };
  } catch (error) {
    return failure(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Connects and sends PING: a Redis that wants a password is not usable without one. */
export async function probeRedis(url: string, timeoutMs = 5000): Promise<ProbeResult> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // ioredis rejects connect() with "Connection is closed."; the socket error says why.
  let socketError: unknown;
  redis.on('error', (error) => {
    socketError ??= error;
  });
  try {
    await redis.connect();
    const reply = await redis.ping();
    return reply === 'PONG' ? { ok: true } : { ok: false, listening: true, reason: `PING answered ${reply}` };
  } catch (error) {
    return failure(socketError ?? error);
  } finally {
    redis.disconnect();
  }
}

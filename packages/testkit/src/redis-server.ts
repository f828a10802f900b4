import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVER_DIR_PREFIX, sweepLeftovers, writeOwner } from './cleanup.js';
import { startPrivateServer, type PrivateServer } from './private-server.js';
import { findRedisServer } from './server-binaries.js';
import { ServerProcess } from './server-process.js';

export interface StartRedisOptions {
  /** TCP port on 127.0.0.1. Default: a free port. */
  port?: number;
  /** Extra `--name value` arguments for redis-server. */
  args?: string[];
  /** How long one start may take. Default 60 s. */
  startTimeoutMs?: number;
}

/** A private redis-server without persistence: a restart starts empty; stop() is SIGTERM. */
export interface RedisServer extends PrivateServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly dir: string;
}

export const REDIS_READY = /Ready to accept connections/;

/** Arguments shared by the test harness and scripts/ensure-services.ts. */
export function redisArgs(options: { port: number; dir: string; extra?: string[] }): string[] {
  return [
    '--port',
    String(options.port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    options.dir,
    ...(options.extra ?? []),
  ];
}

/** Starts a private redis-server in a fresh temp dir. Call destroy() in afterAll. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  sweepLeftovers();
  const command = findRedisServer();
  const dir = mkdtempSync(join(tmpdir(), `${SERVER_DIR_PREFIX}redis-`));
  writeOwner(dir, undefined);
  const server = await startPrivateServer({
    dir,
    name: `Redis in ${dir}`,
    port: options.port,
    stopSignal: 'SIGTERM',
    url: (port) => `redis://127.0.0.1:${port}`,
    launch: (port) =>
      ServerProcess.start({
        description: `redis-server on port ${port}`,
        command,
        args: redisArgs({ port, dir, extra: ['--daemonize', 'no', ...(options.args ?? [])] }),
        readyPattern: REDIS_READY,
        ...(options.startTimeoutMs !== undefined ? { timeoutMs: options.startTimeoutMs } : {}),
      }),
    portTaken: (message) => /Address already in use/.test(message),
  });
  return Object.assign(server, { dir });
}

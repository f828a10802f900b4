import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVER_DIR_PREFIX, sweepLeftovers, track, untrack, writeOwner } from './cleanup.js';
import { freePort } from './free-port.js';
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

/** A private redis-server without persistence: a restart starts empty. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly running: boolean;
  /** The server's main process while running. */
  readonly pid: number | undefined;
  /** SIGTERM: redis closes its clients and exits. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Starts again on the same port. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** kill() and remove the temp dir. */
  destroy(): Promise<void>;
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
  let port = options.port ?? (await freePort());
  let process_: ServerProcess | undefined;
  let destroyed = false;
  const disposable = {
    dir,
    disposeNow() {
      process_?.killNow();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  track(disposable);

  const start = async (firstStart: boolean) => {
    if (destroyed) throw new Error(`Redis in ${dir} was destroyed`);
    if (process_?.running) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        process_ = await ServerProcess.start({
          description: `redis-server on port ${port}`,
          command,
          args: redisArgs({ port, dir, extra: ['--daemonize', 'no', ...(options.args ?? [])] }),
          readyPattern: REDIS_READY,
          ...(options.startTimeoutMs !== undefined ? { timeoutMs: options.startTimeoutMs } : {}),
        });
        writeOwner(dir, process_.pid);
        return;
      } catch (error) {
        if (
          firstStart &&
          options.port === undefined &&
          /Address already in use/.test(String(error)) &&
          attempt < 5
        ) {
          port = await freePort();
          continue;
        }
        throw error;
      }
    }
  };

  try {
    await start(true);
  } catch (error) {
    untrack(disposable);
    disposable.disposeNow();
    throw error;
  }

  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    get running() {
      return process_?.running ?? false;
    },
    get pid() {
      return process_?.running ? process_.pid : undefined;
    },
    stop: async () => {
      await process_?.stop('SIGTERM');
    },
    kill: async () => {
      await process_?.kill();
    },
    start: () => start(false),
    restart: async () => {
      await process_?.stop('SIGTERM');
      await start(false);
    },
    destroy: async () => {
      destroyed = true;
      await process_?.kill();
      untrack(disposable);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

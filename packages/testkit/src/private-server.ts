import { rmSync } from 'node:fs';
import { track, untrack, writeOwner } from './cleanup.js';
import { freePort } from './free-port.js';
import type { ServerProcess } from './server-process.js';

/** How one kind of private server is launched; see {@link startPrivateServer}. */
interface PrivateServerSpec {
  /** The server's temp dir, already created: removed by destroy() and by the cleanup at exit. */
  dir: string;
  /** For messages, e.g. `PostgreSQL in /tmp/…`. */
  name: string;
  /** A fixed TCP port, or undefined for a free one. */
  port: number | undefined;
  /** The signal of a clean stop(). */
  stopSignal: NodeJS.Signals;
  url(port: number): string;
  /** Runs once before the first start (initdb, say). */
  prepare?(): Promise<void>;
  launch(port: number): Promise<ServerProcess>;
  /** True when a start failed because another process bound the free port first. */
  portTaken(message: string): boolean;
  /** Milliseconds to wait before starting again after this failure; undefined gives up. Default: give up. */
  retryAfterMs?(message: string, attempt: number): number | undefined;
}

/** What every private server offers; each kind adds its directories. */
export interface PrivateServer {
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** The server's main process while running. */
  readonly pid: number | undefined;
  /** A clean shutdown with the spec's stop signal. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Starts again on the same port and data. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** kill() and remove the temp dir. */
  destroy(): Promise<void>;
}

/**
 * Starts a server process of a test and keeps it restartable on the same
 * port and data, tracked so that it is removed even when the test process
 * dies. The first start picks another free port when a different process
 * took the chosen one between freePort() and bind.
 */
export async function startPrivateServer(spec: PrivateServerSpec): Promise<PrivateServer> {
  let port = spec.port ?? (await freePort());
  let process_: ServerProcess | undefined;
  let destroyed = false;
  const disposable = {
    dir: spec.dir,
    disposeNow() {
      process_?.killNow();
      rmSync(spec.dir, { recursive: true, force: true });
    },
  };
  track(disposable);

  const start = async (firstStart: boolean) => {
    if (destroyed) throw new Error(`${spec.name} was destroyed`);
    if (process_?.running) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        process_ = await spec.launch(port);
        writeOwner(spec.dir, process_.pid);
        return;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (firstStart && spec.port === undefined && spec.portTaken(message) && attempt < 5) {
          port = await freePort();
          continue;
        }
        const delayMs = spec.retryAfterMs?.(message, attempt);
        if (delayMs === undefined) throw error;
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  };

  try {
    await spec.prepare?.();
    await start(true);
  } catch (error) {
    untrack(disposable);
    disposable.disposeNow();
    throw error;
  }

  return {
    get url() {
      return spec.url(port);
    },
    get port() {
      return port;
    },
    get running() {
      return process_?.running ?? false;
    },
    get pid() {
      return process_?.running ? process_.pid : undefined;
    },
    stop: async () => {
      await process_?.stop(spec.stopSignal);
    },
    kill: async () => {
      await process_?.kill();
    },
    start: () => start(false),
    restart: async () => {
      await process_?.stop(spec.stopSignal);
      await start(false);
    },
    destroy: async () => {
      destroyed = true;
      await process_?.kill();
      untrack(disposable);
      rmSync(spec.dir, { recursive: true, force: true });
    },
  };
}

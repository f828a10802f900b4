import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SERVER_DIR_PREFIX, sweepLeftovers, track, untrack, writeOwner } from './cleanup.js';
import { freePort } from './free-port.js';
import { findPostgresBinDir } from './server-binaries.js';
import { ServerProcess, ServerStartError } from './server-process.js';
import { unprivilegedServerUser, type ServerUser } from './server-user.js';

const execFileAsync = promisify(execFile);

export interface StartPostgresOptions {
  /** TCP port on 127.0.0.1. Default: a free port. */
  port?: number;
  /** Extra server settings, passed as `-c name=value`. */
  settings?: Record<string, string>;
  /** How long one start may take, crash recovery included. Default 60 s. */
  startTimeoutMs?: number;
}

/** A private PostgreSQL cluster for fault-injection tests (trust auth, user `postgres`). */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Holds the unix socket `.s.PGSQL.<port>`. */
  readonly socketDir: string;
  readonly running: boolean;
  /** The server's main process while running. */
  readonly pid: number | undefined;
  /** Fast shutdown (SIGINT): open sessions are ended, the data is checkpointed. */
  stop(): Promise<void>;
  /** SIGKILL to the postmaster and every backend at once: a crash. */
  kill(): Promise<void>;
  /** Starts again on the same port and data directory (running crash recovery after kill()). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** kill() and remove the temp dir. */
  destroy(): Promise<void>;
}

export interface InitPostgresClusterOptions {
  binDir: string;
  dataDir: string;
  user?: ServerUser;
}

/** initdb with trust authentication for user `postgres`, owned by `user` when given. */
export async function initPostgresCluster(options: InitPostgresClusterOptions): Promise<void> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  if (options.user) chownSync(options.dataDir, options.user.uid, options.user.gid);
  await execFileAsync(
    join(options.binDir, 'initdb'),
    [
      '-D',
      options.dataDir,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ],
    {
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
    },
  );
}

/** Server arguments shared by the test harness and scripts/ensure-services.ts. */
export function postgresArgs(options: {
  dataDir: string;
  port: number;
  socketDir: string;
  settings?: Record<string, string>;
}): string[] {
  const settings = {
    // Durability against an OS crash is not what tests need; a killed
    // process still loses nothing, since WAL is written before COMMIT returns.
    fsync: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...options.settings,
  };
  return [
    '-D',
    options.dataDir,
    '-p',
    String(options.port),
    '-h',
    '127.0.0.1',
    '-k',
    options.socketDir,
    ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  ];
}

export const POSTGRES_READY = /database system is ready to accept connections/;

/** Starts a private PostgreSQL cluster in a fresh temp dir. Call destroy() in afterAll. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  sweepLeftovers();
  const binDir = findPostgresBinDir();
  const user = unprivilegedServerUser();
  const dir = mkdtempSync(join(tmpdir(), `${SERVER_DIR_PREFIX}pg-`));
  writeOwner(dir, undefined);
  if (user) chownSync(dir, user.uid, user.gid);
  const dataDir = join(dir, 'data');
  const socketDir = dir;
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

  const launch = () =>
    ServerProcess.start({
      description: `PostgreSQL on port ${port} (${dataDir})`,
      command: join(binDir, 'postgres'),
      args: postgresArgs({
        dataDir,
        port,
        socketDir,
        ...(options.settings ? { settings: options.settings } : {}),
      }),
      readyPattern: POSTGRES_READY,
      ...(user ? { user } : {}),
      ...(options.startTimeoutMs !== undefined ? { timeoutMs: options.startTimeoutMs } : {}),
    });

  const start = async (firstStart: boolean) => {
    if (destroyed) throw new Error(`PostgreSQL in ${dir} was destroyed`);
    if (process_?.running) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        process_ = await launch();
        writeOwner(dir, process_.pid);
        return;
      } catch (error) {
        const output = error instanceof Error ? error.message : '';
        // Another process took the free port between freePort() and bind.
        if (
          firstStart &&
          options.port === undefined &&
          /could not bind|Address already in use/.test(output) &&
          attempt < 5
        ) {
          port = await freePort();
          continue;
        }
        // Killed backends can take a moment to detach from the old shared memory.
        if (/pre-existing shared memory block/.test(output) && attempt < 10) {
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
          continue;
        }
        throw error;
      }
    }
  };

  try {
    await initPostgresCluster({ binDir, dataDir, ...(user ? { user } : {}) });
    await start(true);
  } catch (error) {
    untrack(disposable);
    disposable.disposeNow();
    throw error instanceof ServerStartError
      ? error
      : new ServerStartError(`could not start a private PostgreSQL: ${(error as Error).message}`, {
          cause: error,
        });
  }

  return {
    get url() {
      return `postgres://postgres@127.0.0.1:${port}/postgres`;
    },
    get port() {
      return port;
    },
    dataDir,
    socketDir,
    get running() {
      return process_?.running ?? false;
    },
    get pid() {
      return process_?.running ? process_.pid : undefined;
    },
    stop: async () => {
      await process_?.stop('SIGINT');
    },
    kill: async () => {
      await process_?.kill();
    },
    start: () => start(false),
    restart: async () => {
      await process_?.stop('SIGINT');
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

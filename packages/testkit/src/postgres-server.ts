import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SERVER_DIR_PREFIX, sweepLeftovers, writeOwner } from './cleanup.js';
import { startPrivateServer, type PrivateServer } from './private-server.js';
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
export interface PostgresServer extends PrivateServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`; stop() is a fast shutdown (SIGINT), start() runs crash recovery after kill(). */
  readonly url: string;
  readonly dataDir: string;
  /** Holds the unix socket `.s.PGSQL.<port>`. */
  readonly socketDir: string;
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

  try {
    const server = await startPrivateServer({
      dir,
      name: `PostgreSQL in ${dir}`,
      port: options.port,
      stopSignal: 'SIGINT',
      url: (port) => `postgres://postgres@127.0.0.1:${port}/postgres`,
      prepare: () => initPostgresCluster({ binDir, dataDir, ...(user ? { user } : {}) }),
      launch: (port) =>
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
        }),
      portTaken: (message) => /could not bind|Address already in use/.test(message),
      // Killed backends can take a moment to detach from the old shared memory.
      retryAfterMs: (message, attempt) =>
        /pre-existing shared memory block/.test(message) && attempt < 10 ? 200 * attempt : undefined,
    });
    return Object.assign(server, { dataDir, socketDir });
  } catch (error) {
    throw error instanceof ServerStartError
      ? error
      : new ServerStartError(`could not start a private PostgreSQL: ${(error as Error).message}`, {
          cause: error,
        });
  }
}

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVER_DIR_PREFIX, sweepLeftovers, writeOwner } from './cleanup.js';
import { startPrivateServer, type PrivateServer } from './private-server.js';
import { MissingServerBinaryError, whichSync } from './server-binaries.js';
import { ServerProcess } from './server-process.js';
import { unprivilegedServerUser } from './server-user.js';

export interface StartPgBouncerOptions {
  /** The PostgreSQL every database name is forwarded to. */
  upstream: { host: string; port: number };
  /** Users allowed in (trust authentication, as the test servers use). Default ['postgres']. */
  users?: string[];
  /** PgBouncer's pool_mode. Default `transaction`, the mode LISTEN does not survive. */
  poolMode?: 'session' | 'transaction' | 'statement';
  /** Server connections per database and user. Default 4. */
  poolSize?: number;
  /** TCP port on 127.0.0.1. Default: a free port. */
  port?: number;
}

/** A private PgBouncer in a temp dir; stop() is SIGINT (its clean shutdown). */
export interface PgBouncerServer extends PrivateServer {
  readonly dir: string;
  /** `postgres://<user>@127.0.0.1:<port>/<database>` through the pooler. */
  urlFor(database: string, user?: string): string;
  /** Its admin console, for SHOW STATS and friends (database `pgbouncer`, user `postgres`). */
  readonly adminUrl: string;
}

/**
 * pgbouncer on PATH or in /usr/sbin (Debian's place). When it is missing and
 * we are root on Debian it is installed with apt-get, as the shared servers
 * are by scripts/ensure-services.ts; elsewhere the error says what to install.
 */
export function findPgBouncer(): string {
  const find = () =>
    whichSync('pgbouncer') ?? ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((path) => existsSync(path));
  const found = find();
  if (found) return found;
  const canInstall =
    process.platform === 'linux' && process.getuid?.() === 0 && existsSync('/etc/debian_version');
  if (canInstall) {
    const options = {
      stdio: ['ignore', 2, 2] as ['ignore', number, number],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    };
    execFileSync('apt-get', ['update'], options);
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'pgbouncer'], options);
    const installed = find();
    if (installed) return installed;
  }
  throw new MissingServerBinaryError(
    'pgbouncer not found on PATH or in /usr/sbin; install it, e.g. `apt-get install pgbouncer` on Debian/Ubuntu or `brew install pgbouncer` on macOS',
  );
}

/** Starts a private PgBouncer in front of `upstream`. Call destroy() in afterAll. */
export async function startPgBouncer(options: StartPgBouncerOptions): Promise<PgBouncerServer> {
  sweepLeftovers();
  const command = findPgBouncer();
  const dir = mkdtempSync(join(tmpdir(), `${SERVER_DIR_PREFIX}pgbouncer-`));
  writeOwner(dir, undefined);
  // PgBouncer refuses to run as root, like PostgreSQL.
  const user = unprivilegedServerUser();
  if (user) chownSync(dir, user.uid, user.gid);
  const users = options.users ?? ['postgres'];
  const ini = join(dir, 'pgbouncer.ini');
  const server = await startPrivateServer({
    dir,
    name: `PgBouncer in ${dir}`,
    port: options.port,
    stopSignal: 'SIGINT',
    url: (port) => `postgres://postgres@127.0.0.1:${port}/postgres`,
    prepare: async () => {
      writeFileSync(join(dir, 'userlist.txt'), users.map((name) => `"${name}" ""\n`).join(''));
    },
    launch: (port) => {
      writeFileSync(
        ini,
        [
          '[databases]',
          `* = host=${options.upstream.host} port=${options.upstream.port}`,
          '[pgbouncer]',
          'listen_addr = 127.0.0.1',
          `listen_port = ${port}`,
          'unix_socket_dir =',
          'auth_type = trust',
          `auth_file = ${join(dir, 'userlist.txt')}`,
          `admin_users = ${users.join(',')}`,
          `pool_mode = ${options.poolMode ?? 'transaction'}`,
          `default_pool_size = ${options.poolSize ?? 4}`,
          'max_client_conn = 500',
          `pidfile = ${join(dir, 'pgbouncer.pid')}`,
          // node-postgres sends none of these, other clients do.
          'ignore_startup_parameters = extra_float_digits,options',
          '',
        ].join('\n'),
      );
      if (user) chownSync(ini, user.uid, user.gid);
      return ServerProcess.start({
        description: `pgbouncer on port ${port}`,
        command,
        args: [ini],
        ...(user ? { user } : {}),
        readyPattern: /process up|listening on 127\.0\.0\.1/,
      });
    },
    portTaken: (message) => /Address already in use/.test(message),
  });
  return Object.assign(server, {
    dir,
    urlFor: (database: string, name = 'postgres') =>
      `postgres://${encodeURIComponent(name)}@127.0.0.1:${server.port}/${encodeURIComponent(database)}`,
    get adminUrl() {
      return `postgres://${encodeURIComponent(users[0]!)}@127.0.0.1:${server.port}/pgbouncer`;
    },
  });
}

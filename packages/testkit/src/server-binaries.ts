import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

/** A server program the tests need is not installed; the message says what to install. */
export class MissingServerBinaryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingServerBinaryError';
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable named `name` on PATH. */
export function whichSync(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/**
 * The directory holding initdb, postgres and pg_ctl: `pg_config --bindir`,
 * else the newest /usr/lib/postgresql/<version>/bin (Debian keeps them off
 * PATH), else wherever initdb is on PATH.
 */
export function findPostgresBinDir(): string {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (dir && executable(join(dir, 'initdb')) && executable(join(dir, 'postgres'))) return dir;
  } catch {
    // pg_config comes with the server on Debian only through postgresql-server-dev; look elsewhere.
  }
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((name) => /^\d+(\.\d+)?$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const dir = join('/usr/lib/postgresql', version, 'bin');
      if (executable(join(dir, 'initdb')) && executable(join(dir, 'postgres'))) return dir;
    }
  } catch {
    // no Debian layout
  }
  const initdb = whichSync('initdb');
  if (initdb && executable(join(dirname(initdb), 'postgres'))) return dirname(initdb);
  throw new MissingServerBinaryError(
    'PostgreSQL server programs (initdb, postgres) not found via pg_config, /usr/lib/postgresql/*/bin or PATH; install them, e.g. `apt-get install postgresql` on Debian/Ubuntu or `brew install postgresql` on macOS',
  );
}

/** redis-server on PATH or in the usual places. */
export function findRedisServer(): string {
  const found =
    whichSync('redis-server') ??
    ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server'].find(executable);
  if (found) return found;
  throw new MissingServerBinaryError(
    'redis-server not found on PATH; install it, e.g. `apt-get install redis-server` on Debian/Ubuntu or `brew install redis` on macOS',
  );
}

/** redis-cli (it comes with redis-server) on PATH or in the usual places. */
export function findRedisCli(): string {
  const found = whichSync('redis-cli') ?? ['/usr/bin/redis-cli', '/usr/local/bin/redis-cli'].find(executable);
  if (found) return found;
  throw new MissingServerBinaryError(
    'redis-cli not found on PATH; it comes with Redis, e.g. `apt-get install redis-server` on Debian/Ubuntu or `brew install redis` on macOS',
  );
}

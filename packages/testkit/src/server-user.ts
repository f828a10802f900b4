import { execFileSync } from 'node:child_process';

/** The account a server runs as when we are root. */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

const FALLBACK_USER = 'nodebatch-db';

function lookup(name: string): ServerUser | undefined {
  try {
    const uid = Number(
      execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    );
    const gid = Number(
      execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    );
    return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

let cached: ServerUser | null | undefined;

/**
 * PostgreSQL refuses to run as root, so when we are root its programs run as
 * the `postgres` system user if there is one, otherwise as a system user we
 * create once. undefined when we are not root (run as ourselves).
 */
export function unprivilegedServerUser(): ServerUser | undefined {
  if (cached !== undefined) return cached ?? undefined;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    cached = null;
    return undefined;
  }
  let user = lookup('postgres') ?? lookup(FALLBACK_USER);
  if (!user) {
    try {
      execFileSync(
        'useradd',
        ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', FALLBACK_USER],
        { stdio: 'ignore' },
      );
    } catch {
      execFileSync('adduser', ['--system', '--no-create-home', '--group', FALLBACK_USER], {
        stdio: 'ignore',
      });
    }
    user = lookup(FALLBACK_USER);
  }
  if (!user)
    throw new Error(
      `running as root and could not find or create an unprivileged user (postgres or ${FALLBACK_USER}) for PostgreSQL`,
    );
  cached = user;
  return user;
}

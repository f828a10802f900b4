import { readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Prefix of every private server's temp dir; leftovers are found by it. */
export const SERVER_DIR_PREFIX = 'nodebatch-testkit-';
const OWNER_FILE = 'owner.json';

interface Owner {
  /** The test process that started the server. */
  ownerPid: number;
  /** The server's process group (its main pid), when running. */
  serverPid?: number;
}

/** What the exit handler must do for one live private server. */
export interface Disposable {
  disposeNow(): void;
}

const live = new Set<Disposable>();
let handlerInstalled = false;

/**
 * Kills and removes every registered server when the test process exits,
 * whether the tests passed, failed or forgot destroy(). An `exit` handler
 * can only do synchronous work, so disposal is SIGKILL plus rmSync.
 */
export function track(server: Disposable): void {
  live.add(server);
  if (handlerInstalled) return;
  handlerInstalled = true;
  process.once('exit', () => {
    for (const entry of live) entry.disposeNow();
    live.clear();
  });
}

export function untrack(server: Disposable): void {
  live.delete(server);
}

export function writeOwner(dir: string, serverPid: number | undefined): void {
  const owner: Owner = { ownerPid: process.pid, ...(serverPid !== undefined ? { serverPid } : {}) };
  writeFileSync(join(dir, OWNER_FILE), JSON.stringify(owner));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid still runs one of our servers from `dir` (pids are reused): both
 * servers change into their directory, and redis-server rewrites its
 * command line, so the working directory is what identifies them.
 */
function runsFrom(pid: number, dir: string): boolean {
  try {
    return realpathSync(`/proc/${pid}/cwd`).startsWith(realpathSync(dir));
  } catch {
    return false;
  }
}

/**
 * Removes private servers left by test processes that died without running
 * their exit handler (SIGKILL, a crashed worker): kills the server if it
 * still runs from that dir and deletes the dir. Servers of live test
 * processes are left alone.
 */
export function sweepLeftovers(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((name) => name.startsWith(SERVER_DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    let owner: Owner;
    try {
      owner = JSON.parse(readFileSync(join(dir, OWNER_FILE), 'utf8')) as Owner;
    } catch {
      continue; // being created right now, or not ours
    }
    if (alive(owner.ownerPid)) continue;
    if (owner.serverPid !== undefined && alive(owner.serverPid) && runsFrom(owner.serverPid, dir)) {
      try {
        process.kill(-owner.serverPid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

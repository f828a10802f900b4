import { spawn, type ChildProcess } from 'node:child_process';
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
interface Disposable {
  /** The server's temp dir, removed with it. */
  readonly dir: string;
  disposeNow(): void;
}

const live = new Set<Disposable>();
let handlerInstalled = false;

/**
 * Kills and removes every registered server when the test process exits,
 * whether the tests passed, failed or forgot destroy(). An `exit` handler
 * can only do synchronous work, so disposal is SIGKILL plus rmSync. Vitest
 * ends its workers with a signal, which skips `exit` handlers, so a
 * watchdog process does the same when this process is gone.
 */
export function track(server: Disposable): void {
  live.add(server);
  tellWatchdog(['watch', server.dir, null]);
  if (handlerInstalled) return;
  handlerInstalled = true;
  process.once('exit', () => {
    for (const entry of live) entry.disposeNow();
    live.clear();
  });
}

export function untrack(server: Disposable): void {
  live.delete(server);
  tellWatchdog(['forget', server.dir, null]);
}

/** Records who owns `dir` (for sweepLeftovers) and which process group the watchdog must kill. */
export function writeOwner(dir: string, serverPid: number | undefined): void {
  const owner: Owner = { ownerPid: process.pid, ...(serverPid !== undefined ? { serverPid } : {}) };
  writeFileSync(join(dir, OWNER_FILE), JSON.stringify(owner));
  tellWatchdog(['watch', dir, serverPid ?? null]);
}

/**
 * The watchdog reads `[op, dir, pid]` lines on stdin. When its stdin
 * closes, which the kernel does however this process ends (SIGKILL
 * included), it kills every watched server's process group and removes the
 * dirs. It runs detached so that a signal to our process group (Ctrl-C)
 * does not take it down before it has cleaned up.
 */
const WATCHDOG_SOURCE = `
const { rmSync } = require('node:fs');
const watched = new Map();
let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  pending += chunk;
  for (let end = pending.indexOf('\\n'); end >= 0; end = pending.indexOf('\\n')) {
    const [op, dir, pid] = JSON.parse(pending.slice(0, end));
    pending = pending.slice(end + 1);
    if (op === 'watch') watched.set(dir, pid);
    else watched.delete(dir);
  }
});
process.stdin.on('end', () => {
  for (const [dir, pid] of watched) {
    if (pid) { try { process.kill(-pid, 'SIGKILL'); } catch {} }
    try { rmSync(dir, { recursive: true, force: true }); } catch {}
  }
  process.exit(0);
});
`;

let watchdog: ChildProcess | undefined;

function tellWatchdog(message: [op: 'watch' | 'forget', dir: string, pid: number | null]): void {
  if (!watchdog) {
    watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    watchdog.unref();
    // The pipe must not keep a finished test process alive.
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    watchdog.stdin?.on('error', () => undefined);
  }
  watchdog.stdin?.write(`${JSON.stringify(message)}\n`);
}

/**
 * Whether `pid` is a running process. A zombie is not: an orphaned server
 * is reaped by PID 1, and some containers' PID 1 never reaps.
 */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux';
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
    if (processRunning(owner.ownerPid)) continue;
    if (owner.serverPid !== undefined && processRunning(owner.serverPid) && runsFrom(owner.serverPid, dir)) {
      try {
        process.kill(-owner.serverPid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

import { performance } from 'node:perf_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** A child process the bench started, with its log file (stdout and stderr). */
export interface BenchChild {
  name: string;
  pid: number;
  logPath: string;
  process: ChildProcess;
  /** The first JSON line on stdout that has `key`, e.g. `{"port":1234}` from `nodebatch gateway`. */
  waitForLine(key: string, timeoutMs: number): Promise<Record<string, unknown>>;
  /** Every JSON line printed so far that has `key`. */
  lines(key: string): Array<Record<string, unknown>>;
}

class ChildStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChildStartError';
  }
}

/** The last lines of a log, so that a failure shows why without opening the file. */
export function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Every process the bench starts goes through here, so that all of them are
 * killed at the end, on failure, on Ctrl-C and on an uncaught error.
 */
export class ChildSet {
  readonly #children = new Set<BenchChild>();

  constructor(readonly logDir: string) {}

  /**
   * `ipc`: also open an IPC channel with advanced serialization (typed arrays
   * pass as they are), for the observer processes the bench drives by message.
   */
  spawn(name: string, args: string[], env: Record<string, string>, ipc = false): BenchChild {
    const logPath = join(this.logDir, `${name}.log`);
    const log = createWriteStream(logPath);
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      ...(ipc && { serialization: 'advanced' as const }),
    });
    if (child.pid === undefined) throw new ChildStartError(`${name}: could not spawn ${process.execPath}`);
    const lines = createInterface({ input: child.stdout! });
    const waiting: Array<{ key: string; resolve: (line: Record<string, unknown>) => void }> = [];
    const seen: Array<Record<string, unknown>> = [];
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      if (!line.startsWith('{')) return;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      seen.push(parsed);
      for (const waiter of [...waiting]) {
        if (waiter.key in parsed) {
          waiting.splice(waiting.indexOf(waiter), 1);
          waiter.resolve(parsed);
        }
      }
    });
    child.stderr!.pipe(log, { end: false });
    const exited = new Promise<number | string>((resolve) =>
      child.once('exit', (code, signal) => resolve(signal ?? code ?? 'unknown')),
    );

    const handle: BenchChild = {
      name,
      lines: (key) => seen.filter((line) => key in line),
      pid: child.pid,
      logPath,
      process: child,
      waitForLine: (key, timeoutMs) => {
        const found = seen.find((line) => key in line);
        if (found) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            reject(
              new ChildStartError(
                `${name} (pid ${child.pid}) printed no {"${key}": ...} line within ${timeoutMs} ms; its log ${logPath} ends:\n${tail(logPath)}`,
              ),
            );
          }, timeoutMs);
          waiting.push({
            key,
            resolve: (line) => {
              clearTimeout(timer);
              resolve(line);
            },
          });
          void exited.then((how) => {
            clearTimeout(timer);
            // Give the log a moment to receive the last stderr lines.
            setTimeout(
              () =>
                reject(
                  new ChildStartError(
                    `${name} (pid ${child.pid}) exited (${how}) before printing {"${key}": ...}; its log ${logPath} ends:\n${tail(logPath)}`,
                  ),
                ),
              100,
            );
          });
        });
      },
    };
    this.#children.add(handle);
    void exited.then(() => {
      this.#children.delete(handle);
      log.end();
    });
    return handle;
  }

  /**
   * Node flags that make the child `name` write a V8 CPU profile when it
   * exits, into the directory beside its log that {@link profileDir} names;
   * none when `profile` is false. Whether to profile is the caller's call:
   * `--cpu-profile` asks for every worker, gateway and SSE client, and the
   * full runs profile their workers regardless (the simulated cluster's CPU
   * is read from those profiles).
   */
  profileArgs(name: string, profile: boolean): string[] {
    return profile ? ['--cpu-prof', `--cpu-prof-dir=${this.profileDir(name)}`] : [];
  }

  /** Where the child `name`'s CPU profiles go (see {@link profileArgs}). */
  profileDir(name: string): string {
    return join(this.logDir, `${name}.cpuprofiles`);
  }

  /** SIGTERM, then SIGKILL for any child still alive after `graceMs`. */
  async stop(children: Iterable<BenchChild> = [...this.#children], graceMs = 3000): Promise<void> {
    const list = [...children].filter(
      (child) => child.process.exitCode === null && child.process.signalCode === null,
    );
    await Promise.all(
      list.map(
        (child) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              child.process.kill('SIGKILL');
            }, graceMs);
            child.process.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.process.kill('SIGTERM');
          }),
      ),
    );
  }

  /** Synchronous last resort (process exit): SIGKILL whatever is left. */
  killAllNow(): void {
    for (const child of this.#children) {
      if (child.process.exitCode === null) child.process.kill('SIGKILL');
    }
  }
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (Linux). */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** CPU time (user + system) a process has used, in seconds, from /proc/<pid>/stat (Linux). */
export function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  // USER_HZ is 100 on every Linux configuration Node supports.
  return ticks / 100;
}

/** The whole machine's CPU counters at one moment (see {@link readMachineCpu}). */
interface MachineCpu {
  /** Busy and total CPU time of all cores so far, s (first line of /proc/stat). */
  busy: number;
  total: number;
  /**
   * How long, so far, at least one runnable task waited for a core, s
   * (/proc/pressure/cpu, "some"; absent where the kernel has no PSI).
   */
  waited?: number;
  /** When these were read, s (monotonic). */
  at: number;
  /** CPU seconds so far of the database and Redis servers (see {@link readServerCpu}). */
  servers: ServerCpu;
}

/** CPU seconds of the servers the pipeline runs on, which no child of the bench accounts for. */
export interface ServerCpu {
  /** Every PostgreSQL process, with the backends that already exited (their postmaster's cutime). */
  postgres: number;
  /** Every redis-server process, all threads. */
  redis: number;
}

/**
 * CPU seconds used so far by all PostgreSQL and Redis server processes on
 * the machine (the bench runs alone, so they are the bench's). A backend
 * that exits moves its time into its postmaster's children time, so the sum
 * over live processes plus children time does not drop when connections close.
 */
function readServerCpu(): ServerCpu {
  const servers: ServerCpu = { postgres: 0, redis: 0 };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while listing
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const server = name === 'postgres' ? 'postgres' : name === 'redis-server' ? 'redis' : undefined;
    if (!server) continue;
    // From state on: utime, stime, cutime, cstime are fields 14-17 of stat.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index] ?? 0), 0);
    servers[server] += ticks / 100;
  }
  return servers;
}

/** The machine's CPU counters now (Linux). */
export function readMachineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
  const total = ticks.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  const waited = readCpuPressureSeconds();
  return {
    busy: (total - idle) / 100,
    total: total / 100,
    ...(waited === undefined ? {} : { waited }),
    at: performance.now() / 1000,
    servers: readServerCpu(),
  };
}

/**
 * What a run's window did to the machine: the share of all cores busy, and
 * the share of the time in which some runnable task waited for a core (a
 * process that waits for a core delays every event it handles by that wait).
 */
export function machineShares(
  before: MachineCpu,
  after: MachineCpu,
): { machineBusy: number; cpuPressure?: number; serverCpuSeconds: ServerCpu } {
  const machineBusy = (after.busy - before.busy) / (after.total - before.total);
  const serverCpuSeconds = {
    postgres: after.servers.postgres - before.servers.postgres,
    redis: after.servers.redis - before.servers.redis,
  };
  if (before.waited === undefined || after.waited === undefined || after.at <= before.at)
    return { machineBusy, serverCpuSeconds };
  return {
    machineBusy,
    cpuPressure: (after.waited - before.waited) / (after.at - before.at),
    serverCpuSeconds,
  };
}

/** /proc/pressure/cpu's "some total" (µs) in seconds; undefined without PSI. */
function readCpuPressureSeconds(): number | undefined {
  try {
    const some = /^some .*\btotal=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return some ? Number(some[1]) / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds used so far by a set of children (those that exited count no more). */
export function sumCpu(children: BenchChild[]): number {
  return children.reduce((sum, child) => {
    try {
      return sum + readCpuSeconds(child.pid);
    } catch {
      return sum; // exited
    }
  }, 0);
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';

interface ChildSpec {
  /** Short name used in messages and as the log file name, e.g. `gateway-a`. */
  name: string;
  /** The nodebatch command, e.g. `['worker']`. */
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** A child exited before it was asked to. */
class ChildExitedError extends Error {
  constructor(name: string, code: number | null, signal: NodeJS.Signals | null, logPath: string) {
    super(`${name} exited unexpectedly (code ${code}, signal ${signal}); see its log at ${logPath}`);
    this.name = 'ChildExitedError';
  }
}

/**
 * The demo's worker and gateway processes: started with the same Node.js
 * flags as this process (so a run from TypeScript sources works too), logs
 * to files, and stopped together — SIGTERM first, SIGKILL after a grace
 * period — so Ctrl-C leaves no process behind.
 */
export class ChildGroup {
  readonly #children = new Map<string, { process: ChildProcess; exited: Promise<void>; logPath: string }>();
  #stopping = false;
  readonly #killOnExit = () => {
    for (const child of this.#children.values()) child.process.kill('SIGKILL');
  };

  readonly #logDir: string;
  readonly #entry: string;

  constructor(logDir: string, entry = process.argv[1] ?? '') {
    this.#logDir = logDir;
    this.#entry = entry;
    mkdirSync(logDir, { recursive: true });
    process.on('exit', this.#killOnExit);
  }

  start(spec: ChildSpec, onUnexpectedExit: (error: ChildExitedError) => void): string {
    const logPath = join(this.#logDir, `${spec.name}.log`);
    const log = createWriteStream(logPath, { flags: 'w' });
    const child = spawn(process.execPath, [...process.execArgv, this.#entry, ...spec.args], {
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        log.end();
        if (!this.#stopping) onUnexpectedExit(new ChildExitedError(spec.name, code, signal, logPath));
        resolve();
      });
    });
    this.#children.set(spec.name, { process: child, exited, logPath });
    return logPath;
  }

  async stopAll(graceMs = 15_000): Promise<void> {
    this.#stopping = true;
    const all = [...this.#children.values()];
    for (const child of all) if (child.process.exitCode === null) child.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const child of all) if (child.process.exitCode === null) child.process.kill('SIGKILL');
    }, graceMs);
    await Promise.all(all.map((child) => child.exited));
    clearTimeout(timer);
    process.off('exit', this.#killOnExit);
  }

  pids(): number[] {
    return [...this.#children.values()].flatMap((child) => (child.process.pid ? [child.process.pid] : []));
  }
}

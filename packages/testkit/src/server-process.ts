import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ServerUser } from './server-user.js';

interface ServerProcessOptions {
  /** Shown in errors, e.g. `PostgreSQL on port 54012`. */
  description: string;
  command: string;
  args: string[];
  /** Runs the program as this user (we are root and the server must not be). */
  user?: ServerUser;
  env?: NodeJS.ProcessEnv;
  /** A line of the server's output that means it accepts connections. */
  readyPattern: RegExp;
  /** How long to wait for readyPattern. Default 60 s (crash recovery on a loaded CI machine is slow). */
  timeoutMs?: number;
}

/** The server did not become ready; the message carries its last output lines. */
export class ServerStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerStartError';
  }
}

const KEPT_LINES = 40;

/**
 * One run of a server program, in its own process group so that kill()
 * takes the server and all its children down at once, as a crash would.
 */
export class ServerProcess {
  readonly pid: number;
  readonly #lines: string[] = [];
  #exitCode: number | null | undefined;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess) {
    this.pid = child.pid ?? -1;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal ? -1 : null);
        resolve();
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.#lines.push(line);
        if (this.#lines.length > KEPT_LINES) this.#lines.shift();
      });
    }
  }

  static async start(options: ServerProcessOptions): Promise<ServerProcess> {
    const child = spawn(options.command, options.args, {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
    });
    // A test that forgets destroy() must not keep its worker alive; the exit
    // handler in cleanup.ts kills what is left.
    child.unref();
    const server = new ServerProcess(child);
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 60_000;
      const timer = setTimeout(() => {
        server.killNow();
        reject(
          new ServerStartError(
            `${options.description} not ready after ${timeoutMs} ms; last output:\n${server.recentOutput()}`,
          ),
        );
      }, timeoutMs);
      const finish = (error?: Error) => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        if (error) reject(error);
        else resolve();
      };
      const onData = (chunk: Buffer) => {
        if (
          options.readyPattern.test(chunk.toString('utf8')) ||
          server.#lines.some((line) => options.readyPattern.test(line))
        )
          finish();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (error) =>
        finish(
          new ServerStartError(`${options.description} could not be started: ${error.message}`, {
            cause: error,
          }),
        ),
      );
      void server.#exited.then(() =>
        finish(
          new ServerStartError(
            `${options.description} exited (code ${server.#exitCode}) before it was ready; last output:\n${server.recentOutput()}`,
          ),
        ),
      );
    });
    for (const stream of [child.stdout, child.stderr])
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    return server;
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  recentOutput(): string {
    return this.#lines.join('\n');
  }

  /** Sends `signal` to the server's main process and waits until it has exited. */
  async stop(signal: NodeJS.Signals, timeoutMs = 60_000): Promise<void> {
    if (!this.running) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
    const timer = setTimeout(() => this.killNow(), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }

  /** SIGKILL to the whole process group, and waits until the main process has exited. */
  async kill(): Promise<void> {
    this.killNow();
    await this.#exited;
  }

  /** Synchronous SIGKILL of the group; safe to call from a process `exit` handler. */
  killNow(): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

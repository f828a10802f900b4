import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../services/cli/src/main.ts', import.meta.url));

/** `nodebatch ARGS` from source, as a user's shell runs it. */
const CLI_COMMAND = [process.execPath, '--conditions=source', '--import', 'tsx', CLI];

/** A running `nodebatch` command whose output is collected as it comes. */
interface CliRun {
  readonly child: ChildProcess;
  /** stdout so far (for a run in a pseudo-terminal: everything the terminal showed). */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (128 + signal number when killed by a signal). */
  readonly exited: Promise<number>;
  /** Resolves once `predicate` holds for stdout so far; rejects if the command exits first. */
  waitForOutput(predicate: (stdout: string) => boolean, what: string): Promise<void>;
  write(text: string): void;
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

function track(child: ChildProcess): CliRun {
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((check) => check());
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    out += chunk;
    notify();
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    err += chunk;
    notify();
  });
  let code: number | undefined;
  const exited = new Promise<number>((resolve) =>
    child.once('close', (exitCode, signal) => {
      code = exitCode ?? 128 + (SIGNALS[signal ?? ''] ?? 0);
      resolve(code);
      notify();
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    write: (text) => child.stdin!.write(text),
    waitForOutput(predicate, what) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(out)) {
            waiters.delete(check);
            resolve();
          } else if (code !== undefined) {
            waiters.delete(check);
            reject(new Error(`nodebatch exited (${code}) before ${what}:\n${out}\n${err}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Runs `nodebatch` with pipes for stdin, stdout and stderr: no terminal. */
export function runCli(args: readonly string[], env: Record<string, string | undefined>): CliRun {
  const [command, ...base] = CLI_COMMAND;
  return track(
    spawn(command!, [...base, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
}

/**
 * Runs `nodebatch` inside a pseudo-terminal made by util-linux `script`:
 * stdin, stdout and stderr of the command are the terminal, what it shows
 * arrives on stdout here, and what is written here is typed into it (Ctrl-C
 * included, which the terminal turns into SIGINT). `-e` passes the exit code on.
 */
export function runCliInTerminal(args: readonly string[], env: Record<string, string | undefined>): CliRun {
  const line = [...CLI_COMMAND, ...args].map(shellQuote).join(' ');
  return track(
    spawn('script', ['-qefc', line, '/dev/null'], {
      cwd: ROOT,
      env: { ...process.env, ...env, TERM: 'xterm' },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

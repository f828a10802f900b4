import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** `nodebatch worker` from the sources, as a deployment runs it (the built CLI runs the same code). */
const REPO_ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
const CLI = fileURLToPath(new URL('../../../cli/src/main.ts', import.meta.url));

/** A worker in a process of its own, for tests that kill, stop or pause it. */
export interface WorkerProcess {
  child: ChildProcess;
  id: string;
  /** Every line it wrote (stdout and stderr), for assertions and failure messages. */
  output: string[];
}

interface WorkerProcessOptions {
  /** BullMQ lock of its jobs, ms. */
  lockDurationMs: number;
  /** How often it looks for stalled jobs, ms. */
  stalledIntervalMs: number;
}

/** Spawns `nodebatch worker` with `env` on top of the parent's; resolves once it printed its ready line. */
export async function spawnWorker(
  env: Record<string, string>,
  options: WorkerProcessOptions,
): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      CLI,
      'worker',
      '--lock-duration-ms',
      String(options.lockDurationMs),
      '--stalled-interval-ms',
      String(options.stalledIntervalMs),
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  const id = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      output.push(line);
      try {
        const parsed = JSON.parse(line) as { workerId?: string };
        if (parsed.workerId) resolve(parsed.workerId);
      } catch {
        // Not a JSON line: kept in `output` for the failure message.
      }
    });
    child.once('exit', (code) =>
      reject(new Error(`worker exited with ${code} before it was ready:\n${output.join('\n')}`)),
    );
  });
  return { child, id, output };
}

/** SIGTERM (SIGCONT first, should it be paused) and wait for the exit. */
export async function stopWorker(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  const exited = once(worker.child, 'exit');
  worker.child.kill('SIGCONT');
  worker.child.kill('SIGTERM');
  await exited;
}

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { lastValueFrom, timeout, toArray, map } from 'rxjs';
import { loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import type { NewEvent, ProgressStreams, StoredEvent } from '@nodebatch/progress';

/** A logger whose every line is kept, parsed and raw, to assert what a user would read. */
export function captureLogger(level = 'debug'): {
  logger: Logger;
  lines: Record<string, unknown>[];
  text(): string;
} {
  const raw: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level },
    {
      write(line: string) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines, text: () => raw.join('') };
}

export function configFor(databaseUrl: string, env: Record<string, string> = {}): NodebatchConfig {
  return loadConfig({ env: { DATABASE_URL: databaseUrl, ...env }, cwd: '/nonexistent' }).config;
}

export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Ends the LISTEN connections of nodebatch runtimes on one database; returns how many were ended. */
export async function terminateListeners(adminUrl: string, database: string): Promise<number> {
  return withClient(adminUrl, async (client) => {
    const { rowCount } = await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = $1 AND application_name = 'nodebatch-listener' AND pid <> pg_backend_pid()`,
      [database],
    );
    return rowCount ?? 0;
  });
}

export async function countListeners(adminUrl: string, database: string): Promise<number> {
  return withClient(adminUrl, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'nodebatch-listener'`,
      [database],
    );
    return rows[0]?.n ?? 0;
  });
}

export const created = (nodes = ['node-1']): NewEvent => ({
  type: 'TaskCreated',
  data: { userId: 'tester', action: 'cordon', nodes, params: {} },
});

export const progressEvent = (done: number, total: number, message?: string): NewEvent => ({
  type: 'NodeProgress',
  data: { node: 'node-1', done, total, ...(message === undefined ? {} : { message }) },
});

export const completed = (): NewEvent => ({
  type: 'TaskCompleted',
  data: { succeeded: 1, failed: 0, skipped: 0 },
});

/** Every seq the stream delivers until the task's terminal event. */
export function collectSeqs(streams: ProgressStreams, taskId: string, timeoutMs: number): Promise<number[]> {
  return lastValueFrom(
    streams.events$(taskId).pipe(
      map((event: StoredEvent) => event.seq),
      toArray(),
      timeout(timeoutMs),
    ),
  );
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The process that appends in the two-process tests; see fixtures/publisher.ts. */
interface PublisherProcess {
  readonly child: ChildProcess;
  /** Resolves when the publisher reports having appended at least `seq`. */
  reached(seq: number): Promise<void>;
  /** Resolves with the exit code once the publisher has appended everything. */
  readonly exited: Promise<number | null>;
  readonly output: string[];
}

const PUBLISHER = fileURLToPath(new URL('./fixtures/publisher.ts', import.meta.url));

export function spawnPublisher(env: Record<string, string>): PublisherProcess {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', PUBLISHER], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let appended = 0;
  const waiters: { seq: number; resolve: () => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    output.push(line);
    const match = /^appended (\d+)$/.exec(line);
    if (!match) return;
    appended = Number(match[1]);
    for (const waiter of waiters.splice(0)) {
      if (appended >= waiter.seq) waiter.resolve();
      else waiters.push(waiter);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output,
    exited,
    reached(seq) {
      if (appended >= seq) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push({ seq, resolve });
        void exited.then(() => {
          if (appended < seq)
            reject(new Error(`publisher exited at ${appended} before ${seq}:\n${output.join('\n')}`));
        });
      });
    },
  };
}

/** The event with this seq in a task of `total` events: created, progress..., completed. */
function eventAt(seq: number, total: number): NewEvent {
  if (seq === 1) return created();
  if (seq === total) return completed();
  return progressEvent(seq, total);
}

interface PublishOptions {
  append(taskId: string, events: NewEvent[], options: { expectedSeq: number }): Promise<StoredEvent[]>;
  latestSeq(taskId: string): Promise<number>;
  taskId: string;
  /** Events in the task, TaskCreated and TaskCompleted included. */
  total: number;
  /** Largest batch of one append; sizes vary from 1 to this (about 800 appends for 10,000 events). Default 24. */
  maxBatch?: number;
  /** Called after each append; the publisher waits for a returned promise (a test's gate). */
  onAppended?(seq: number): void | Promise<void>;
  logger?: Logger;
}

/**
 * Appends a task's events like a worker that survives database outages: an
 * append that failed may or may not have committed (the connection can die
 * during COMMIT), so the publisher asks the log where it stands and
 * `expectedSeq` guarantees that nothing is appended twice.
 */
export async function publish(options: PublishOptions): Promise<void> {
  const { taskId, total } = options;
  const maxBatch = options.maxBatch ?? 24;
  // Resumes where the log stands: the test may have appended TaskCreated to subscribe first.
  let seq = await options.latestSeq(taskId);
  let batchNumber = 0;
  while (seq < total) {
    // A fixed pattern of sizes rather than randomness: the same run every time.
    const size = 1 + ((batchNumber * 7 + 3) % maxBatch);
    batchNumber += 1;
    const events = range(seq + 1, Math.min(total, seq + size)).map((s) => eventAt(s, total));
    try {
      const stored = await options.append(taskId, events, { expectedSeq: seq });
      seq = stored[stored.length - 1]!.seq;
      await options.onAppended?.(seq);
    } catch (err) {
      options.logger?.debug({ err, seq }, 'append failed; asking the log where it stands');
      await new Promise((resolve) => setTimeout(resolve, 100));
      try {
        seq = await options.latestSeq(taskId);
      } catch {
        // Still down: the next append with the same expectedSeq tells us.
      }
    }
  }
}

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { filter, firstValueFrom, lastValueFrom, timeout, toArray, map } from 'rxjs';
import { expect, vi } from 'vitest';
import { loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import type {
  NewEvent,
  NotifierInfo,
  ProgressStreams,
  StoredEvent,
  TransportType,
} from '@nodebatch/progress';
import type { Runtime } from '@nodebatch/runtime';

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

/** A LISTEN connection that {@link terminateListeners} ended: its backend and the role it logged in as. */
export interface EndedListener {
  pid: number;
  usename: string;
}

/**
 * Ends the LISTEN connections of nodebatch runtimes on one database and says
 * whose they were: a test gives the subscriber's listener a role of its own
 * (`listenerDatabase`), so it can require that this listener was among them.
 */
export async function terminateListeners(adminUrl: string, database: string): Promise<EndedListener[]> {
  return withClient(adminUrl, async (client) => {
    const { rows } = await client.query<EndedListener & { ended: boolean }>(
      `SELECT pid, usename::text AS usename, pg_terminate_backend(pid) AS ended FROM pg_stat_activity
        WHERE datname = $1 AND application_name = 'nodebatch-listener' AND pid <> pg_backend_pid()`,
      [database],
    );
    return rows.filter((row) => row.ended).map(({ pid, usename }) => ({ pid, usename }));
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

/** A hint the notifier forwarded, and what was active when it came. */
export interface ObservedHint {
  seq: number;
  /**
   * The hint carried its events in the notification itself (a NOTIFY or a
   * PUBLISH). Polling and resolved references set `readFromLog`, so only a
   * push transport's own round trip produces a pushed hint.
   */
  pushed: boolean;
  active: TransportType;
  fallback: boolean;
}

/**
 * Records every hint the notifier of `runtime` forwards for a task, to tell
 * which transport delivered: the notifier forwards only the active
 * transport's hints.
 */
export function recordHints(runtime: Runtime, taskId: string): { hints: ObservedHint[]; stop(): void } {
  const hints: ObservedHint[] = [];
  const subscription = runtime.notifier.hints$.subscribe((hint) => {
    if (hint.taskId !== taskId) return;
    const { active, fallback } = runtime.notifier.info;
    hints.push({
      seq: hint.seq,
      pushed: hint.events !== undefined && hint.readFromLog !== true,
      active,
      fallback,
    });
  });
  return { hints, stop: () => subscription.unsubscribe() };
}

/** Resolves once the notifier of `runtime` delivers through its configured transport again, healthy. */
export function onConfiguredTransport(runtime: Runtime, timeoutMs = 60_000): Promise<NotifierInfo> {
  return firstValueFrom(
    runtime.notifier.info$.pipe(
      filter((info) => info.active === info.configured && info.healthy && !info.fallback),
      timeout({
        first: timeoutMs,
        with: () => {
          throw new Error(
            `the notifier did not return to ${runtime.notifier.info.configured} within ${timeoutMs} ms: ${JSON.stringify(runtime.notifier.info)}`,
          );
        },
      }),
    ),
  );
}

/**
 * Publishes a task of 300 events while the notifier of `runtime` is on the
 * polling fallback, holding the publisher half way until the notifier has
 * tried `configured` again and failed: the notifier never leaves polling, and
 * every event arrives, announced by polling alone. `lines` are the runtime's
 * log lines, at debug level.
 */
export async function expectStaysOnPolling(
  runtime: Runtime,
  lines: readonly Record<string, unknown>[],
  configured: TransportType,
): Promise<void> {
  const total = 300;
  const taskId = `stays-on-polling-${Date.now()}`;
  const left: NotifierInfo[] = [];
  const watching = runtime.notifier.info$.subscribe((info) => {
    if (info.active !== 'polling' || !info.fallback) left.push(info);
  });
  await runtime.notifier.append(taskId, [created()], { expectedSeq: 0 });
  const received = collectSeqs(runtime.streams, taskId, 60_000);
  const observed = recordHints(runtime, taskId);
  const failedRetries = () => lines.filter((line) => line.msg === `${configured} still unavailable`).length;
  const retriesBefore = failedRetries();
  try {
    await publish({
      ...throughRuntime(runtime),
      taskId,
      total,
      async onAppended(seq) {
        if (seq < total / 2) return;
        // Until a retry failed, or the notifier switched (reported at once below).
        await vi.waitFor(
          () => {
            if (left.length === 0) expect(failedRetries()).toBeGreaterThan(retriesBefore);
          },
          { timeout: 30_000, interval: 50 },
        );
      },
    });
    expect(left).toEqual([]);
    expect(await received).toEqual(range(1, total));
  } finally {
    watching.unsubscribe();
    observed.stop();
  }
  expect(observed.hints.length).toBeGreaterThan(0);
  expect(observed.hints.filter((hint) => hint.pushed || hint.active !== 'polling')).toEqual([]);
  expect(runtime.notifier.info).toMatchObject({ configured, active: 'polling', fallback: true });
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
  /** Resolves with the seq at which the publisher holds next (PAUSE_AT); it appends nothing until {@link resume}. */
  paused(): Promise<number>;
  /** Lets a held publisher go on. */
  resume(): void;
  /** Resolves with the exit code once the publisher has appended everything. */
  readonly exited: Promise<number | null>;
  readonly output: string[];
}

const PUBLISHER = fileURLToPath(new URL('./fixtures/publisher.ts', import.meta.url));

export function spawnPublisher(env: Record<string, string>): PublisherProcess {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', PUBLISHER], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let appended = 0;
  const waiters: { seq: number; resolve: () => void }[] = [];
  const pauses: number[] = [];
  const pauseWaiters: ((seq: number) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    output.push(line);
    const paused = /^paused (\d+)$/.exec(line);
    if (paused) {
      const waiter = pauseWaiters.shift();
      if (waiter) waiter(Number(paused[1]));
      else pauses.push(Number(paused[1]));
      return;
    }
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
    paused() {
      const seq = pauses.shift();
      if (seq !== undefined) return Promise.resolve(seq);
      return new Promise<number>((resolve, reject) => {
        pauseWaiters.push(resolve);
        void exited.then(() => reject(new Error(`publisher exited without pausing:\n${output.join('\n')}`)));
      });
    },
    resume() {
      child.stdin!.write('resume\n');
    },
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

/** How {@link publish} appends through a runtime's notifier and asks its log where a task stands. */
export function throughRuntime(runtime: Runtime): Pick<PublishOptions, 'append' | 'latestSeq'> {
  return {
    append: (id, events, options) => runtime.notifier.append(id, events, options),
    latestSeq: async (id) => (await runtime.store.latestSeqs([id])).get(id) ?? 0,
  };
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
    let stored: StoredEvent[];
    try {
      stored = await options.append(taskId, events, { expectedSeq: seq });
    } catch (err) {
      options.logger?.debug({ err, seq }, 'append failed; asking the log where it stands');
      await new Promise((resolve) => setTimeout(resolve, 100));
      try {
        seq = await options.latestSeq(taskId);
      } catch {
        // Still down: the next append with the same expectedSeq tells us.
      }
      continue;
    }
    seq = stored[stored.length - 1]!.seq;
    // Outside the retry: a gate that fails (a fault that did not happen) fails the publisher.
    await options.onAppended?.(seq);
  }
}

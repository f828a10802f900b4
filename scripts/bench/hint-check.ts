/**
 * What invariant 8 costs: inline events of a hint from another process are
 * delivered only once the log shows the same events (hint-check.ts), or at
 * once when their MAC verifies with the hint key (hint-key.ts), while a hint
 * from inside the process is taken as it is. This runs the same appends and
 * hints through ProgressStreams over a real PostgreSQL store the three ways
 * and prints, per mode, the store reads, the time from hint to delivery and
 * the CPU time of the process.
 *
 * Runs against NODEBATCH_TEST_DATABASE_URL or the local server, in a fresh
 * database it creates and drops, and writes bench/hint-check.md:
 *   node --conditions=source --import tsx scripts/bench/hint-check.ts [--quick]
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createEventStore, runMigrations, type PostgresEventStore } from '@nodebatch/event-store';
import { HintKey, ProgressStreams, isTerminalType, type NewEvent } from '@nodebatch/progress';
import { InstrumentedReader, ManualHintSource } from '@nodebatch/progress/testing';
import { createTestDatabase } from '@nodebatch/testkit';
import pg from 'pg';

const quick = process.argv.includes('--quick');
const TASKS = quick ? 5 : 20;
const EVENTS_PER_TASK = quick ? 50 : 250;
const SUBSCRIBERS_PER_TASK = 5;
const OUTPUT = fileURLToPath(new URL('../../bench/hint-check.md', import.meta.url));

interface ModeResult {
  mode: string;
  events: number;
  deliveries: number;
  storeReads: number;
  p50Ms: number;
  p99Ms: number;
  cpuMs: number;
  wallMs: number;
}

const progress = (done: number): NewEvent => ({
  type: 'NodeProgress',
  data: { node: 'node-a', done, total: EVENTS_PER_TASK, message: `evicted pod ${done}` },
});

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * How hints reach the subscribers: from inside the process; from another
 * process, checked against the log; or from another process with a MAC made
 * with the hint key, which is signed as a sender would and verified as a
 * receiving transport does, once per hint.
 */
type Mode = 'in-process' | 'checked' | 'authenticated';

const MODE_NAMES: Record<Mode, string> = {
  'in-process': 'in-process hints (taken as they are)',
  checked: 'hints from another process (checked against the log)',
  authenticated: 'hints from another process with a MAC (PROGRESS_HINT_KEY)',
};

async function runMode(store: PostgresEventStore, mode: Mode, prefix: string): Promise<ModeResult> {
  const reader = new InstrumentedReader(store);
  const hints = new ManualHintSource({ inProcess: mode === 'in-process' });
  const key = new HintKey(randomBytes(32));
  const streams = new ProgressStreams({ store: reader, hints });
  const taskIds = Array.from({ length: TASKS }, (_, i) => `${prefix}-${i}`);
  for (const taskId of taskIds) {
    await store.append(taskId, [
      { type: 'TaskCreated', data: { userId: 'bench', action: 'drain', nodes: ['node-a'], params: {} } },
    ]);
  }
  // When each seq was hinted, per task; a delivery's latency is measured from it.
  const hintedAt = new Map<string, number[]>();
  const latencies: number[] = [];
  let deliveries = 0;
  const done = taskIds.flatMap((taskId) =>
    Array.from(
      { length: SUBSCRIBERS_PER_TASK },
      () =>
        new Promise<void>((resolve, reject) => {
          streams.events$(taskId).subscribe({
            next: (event) => {
              deliveries += 1;
              const at = hintedAt.get(taskId)?.[event.seq];
              if (at !== undefined) latencies.push(performance.now() - at);
            },
            error: reject,
            complete: resolve,
          });
        }),
    ),
  );
  // The subscribers' first read is the same in both modes; measure from here.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const readsBefore = reader.calls.readTask;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    taskIds.map(async (taskId) => {
      const times: number[] = [];
      hintedAt.set(taskId, times);
      for (let i = 1; i <= EVENTS_PER_TASK; i++) {
        const last = i === EVENTS_PER_TASK;
        const event: NewEvent = last
          ? { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } }
          : progress(i);
        const stored = await store.append(taskId, [event]);
        const seq = stored.at(-1)!.seq;
        const signed = { taskId, seq, events: stored };
        // The sender's MAC is made before the hint leaves; the receiver's check counts in the latency.
        const mac = mode === 'authenticated' ? key.sign(signed) : undefined;
        times[seq] = performance.now();
        hints.hint(
          mode === 'authenticated' ? { ...signed, authentication: key.authenticate(signed, mac) } : signed,
        );
        if (last && !isTerminalType(stored.at(-1)!.type)) throw new Error('the last event must end the task');
      }
    }),
  );
  await Promise.all(done);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  return {
    mode: MODE_NAMES[mode],
    events: TASKS * EVENTS_PER_TASK,
    deliveries,
    storeReads: reader.calls.readTask - readsBefore,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
  };
}

function render(results: readonly ModeResult[]): string {
  const header =
    '| mode | events | deliveries | store reads | reads per 1,000 events | hint→delivery p50 ms | p99 ms | CPU ms | wall ms |';
  const rows = results.map((r) =>
    [
      r.mode,
      r.events,
      r.deliveries,
      r.storeReads,
      ((r.storeReads / r.events) * 1000).toFixed(0),
      r.p50Ms.toFixed(2),
      r.p99Ms.toFixed(2),
      r.cpuMs.toFixed(0),
      r.wallMs.toFixed(0),
    ].join(' | '),
  );
  return [header, '|---|---:|---:|---:|---:|---:|---:|---:|---:|', ...rows.map((row) => `| ${row} |`)].join(
    '\n',
  );
}

async function main(): Promise<void> {
  const database = await createTestDatabase({ prefix: 'bench_hint_check' });
  const pool = new pg.Pool({ connectionString: database.url, max: 8 });
  try {
    await runMigrations(pool);
    const store = createEventStore({ pool });
    // A warm-up, then the modes that leave the process, then in-process again, so a warm cache favours none.
    await runMode(store, 'in-process', 'warm-trusted');
    const checked = await runMode(store, 'checked', 'checked-1');
    const authenticated = await runMode(store, 'authenticated', 'authenticated-1');
    const inProcess = await runMode(store, 'in-process', 'trusted-2');
    const results = [inProcess, checked, authenticated];
    const table = render(results);
    const text = [
      '# The cost of checking inline hint events against the log, and of authenticating them instead',
      '',
      `${TASKS} tasks × ${EVENTS_PER_TASK} events, one append and one hint per event, ${SUBSCRIBERS_PER_TASK} subscribers per task,`,
      'ProgressStreams over a real PostgreSQL store, in one process (`scripts/bench/hint-check.ts`' +
        (quick ? ', `--quick`' : '') +
        `, ${new Date().toISOString()}).`,
      'CPU and wall time include the appends, which are the same in every mode.',
      '',
      table,
      '',
    ].join('\n');
    process.stdout.write(`${table}\n`);
    writeFileSync(OUTPUT, text);
  } finally {
    await pool.end();
    await database.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

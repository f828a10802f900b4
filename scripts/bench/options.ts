import { parseArgs } from 'node:util';

export type TransportName = 'postgres' | 'redis' | 'polling';

/** Parameters of one bench run; the defaults finish in about three minutes on 2 idle cores, `--quick` in under one. */
export interface BenchOptions {
  /** `--quick`: the same tables from fewer samples and rows (the quick defaults below). */
  quick: boolean;
  /** Build the workspace before measuring (turbo, cached); false: only check that dist is current. */
  build: boolean;
  /** Worker (producer) processes. Default 2. */
  workers: number;
  /** Gateway processes of the pipeline and full runs; subscribers are spread over them. Default 2. */
  gateways: number;
  /** SSE subscribers of the pipeline and full runs. Default 100. */
  subscribers: number;
  /** Tasks (jobs) per run. Default 4. */
  tasks: number;
  /** Progress events per job in the pipeline max run. Default 2000 (quick 300). */
  events: number;
  /** Target events/s of the pipeline paced run (over all jobs). Default 1000. */
  rate: number;
  /** Progress events per job in the pipeline paced run. Default 1000 (quick 150). */
  pacedEvents: number;
  /** Nodes per task of the full run (nodebatch's worker draining the simulated cluster, ~6 events per node). Default 400 (quick 50). */
  nodes: number;
  /** Nodes drained at once per task in the full run. Default 10 (the gateway's LIMIT_DRAIN_CONCURRENCY). */
  concurrency: number;
  /** Processes the SSE clients live in (never the bench process); a run's subscribers are split over them. Default 2. */
  clientProcesses: number;
  /** Subscriber counts of the scale table (postgres, 2 gateways). Default 100,1000,5000 (quick 100,1000). */
  scaleSubscribers: number[];
  /** Gateway counts of the scale table, at `scaleGatewaySubscribers`. Default 1,2,4 (quick 1,2). */
  scaleGateways: number[];
  /** Subscribers of the scale table's gateway rows. Default 1000. */
  scaleGatewaySubscribers: number;
  /**
   * Progress events per job in every scale run: the same events at every
   * size, so deliveries grow with the subscribers (fan-out) and the gateway
   * CPU per million deliveries shows whether the cost per delivery grows with
   * it. Default 150 (quick 10).
   */
  scaleEvents: number;
  /** Idle SSE subscribers opened on one gateway for its memory and CPU per subscriber. Default 1000 (quick 200). */
  idleSubscribers: number;
  /** Seconds of each idle window (with and without idle subscribers). Default 3 (quick 1). */
  idleWindowS: number;
  /** Subscribers of the second polling paced run (database load against subscriber count). Default 400 (quick 0); 0 skips it. */
  pollingSubscribers: number;
  /** PROGRESS_POLL_INTERVAL for the polling transport, ms. Default 1000. */
  pollIntervalMs: number;
  /** Default postgres,redis,polling (quick postgres,redis). */
  transports: TransportName[];
  /** Transports (of `transports`) whose idle cost is measured. Default all (quick: the first). */
  idleTransports: TransportName[];
  /** Transports of the full runs (nodebatch's worker on the simulated cluster). Default all of `transports` (quick: the first). */
  fullTransports: TransportName[];
  /** Round trips timed for each raw floor. Default 2000 (quick 150). */
  rawSamples: number;
  bullmq: boolean;
  /** Limit for a child to start or a run to finish, seconds. Default 120. */
  timeoutS: number;
  /** Write V8 CPU profiles of the worker and gateway processes next to their logs. Default false. */
  cpuProfile: boolean;
  /**
   * Give every worker, producer and gateway one random PROGRESS_HINT_KEY, so
   * that gateways deliver signed inline events without a log read, as a
   * deployment with the key does. `--no-hint-key`: false, every inline event
   * is checked against the log. Default true.
   */
  hintKey: boolean;
  /**
   * PROGRESS_COMBINED_HINTS on every process: a transaction that appends to
   * several tasks announces them in one NOTIFY or PUBLISH. Every process of a
   * bench run is this version, as after an upgrade. `--separate-hints`:
   * false, one per task. Default true.
   */
  combinedHints: boolean;
  /** Directory for RESULTS.md, results.json and latency.svg. Default bench (quick: bench/quick). */
  out: string;
  /** A remark on the run printed with the machine in RESULTS.md (e.g. what else ran). Default none. */
  note: string;
}

const USAGE = `pnpm bench [options]
  --quick                  same tables from fewer samples and rows: no polling, idle cost and full run
                           of the first transport only, smaller scale table (under a minute on 2 cores)
  --no-build               do not build first; refuse if any dist is older than its sources
  --workers N              worker / producer processes (2)
  --gateways N             gateway processes of the pipeline and full runs (2)
  --subscribers N          SSE subscribers of the pipeline and full runs (100)
  --tasks N                jobs (tasks) per run (4)
  --events N               progress events per job, pipeline max run (2000; quick 300)
  --rate N                 target events/s of the pipeline paced run (1000)
  --paced-events N         progress events per job, pipeline paced run (1000; quick 150)
  --nodes N                nodes per task of the full run on the simulated cluster (400; quick 50)
  --concurrency N          nodes at once per task in the full run (10)
  --client-processes N     processes holding the SSE clients (2)
  --scale-subscribers LIST subscriber counts of the scale table (100,1000,5000; quick 100,1000)
  --scale-gateways LIST    gateway counts of the scale table (1,2,4; quick 1,2)
  --scale-gateway-subscribers N  subscribers of those rows (1000)
  --scale-events N         progress events per job in every scale run (150; quick 10)
  --idle-subscribers N     idle SSE streams for the gateway memory and CPU figures (1000; quick 200)
  --idle-window-s N        seconds per idle window (3; quick 1)
  --polling-subscribers N  subscribers of the second polling paced run, 0 = skip (400; quick 0)
  --poll-interval-ms N     polling interval (1000)
  --transports LIST        comma-separated (postgres,redis,polling; quick postgres,redis)
  --idle-transports LIST   of those, the ones whose idle cost is measured (all; quick the first)
  --full-transports LIST   transports of the full runs on the simulated cluster (all; quick the first)
  --raw-samples N          raw pg_notify / PUBLISH round trips (2000; quick 150)
  --no-bullmq              skip the BullMQ QueueEvents baseline
  --timeout-s N            limit for a child to start or a run to finish (120)
  --cpu-profile            write V8 CPU profiles of workers, gateways and SSE clients beside their logs
  --no-hint-key            no PROGRESS_HINT_KEY: gateways check every inline event against the log
                           (default: one random key for all workers and gateways)
  --separate-hints         PROGRESS_COMBINED_HINTS=false: one NOTIFY / PUBLISH per task of a transaction
                           (default: one per transaction)
  --out DIR                where RESULTS.md, results.json and latency.svg go (bench; quick: bench/quick)
  --note TEXT              a remark printed with the machine in RESULTS.md (what else ran, ...)`;

export class BenchUsageError extends Error {
  constructor(message: string) {
    super(`${message}\n\n${USAGE}`);
    this.name = 'BenchUsageError';
  }
}

/** Defaults that differ between a full and a quick run. */
const SIZED = {
  events: ['2000', '300'],
  'paced-events': ['1000', '150'],
  nodes: ['400', '50'],
  'scale-events': ['150', '10'],
  'idle-subscribers': ['1000', '200'],
  'idle-window-s': ['3', '1'],
  'raw-samples': ['2000', '150'],
  'scale-subscribers': ['100,1000,5000', '100,1000'],
  'scale-gateways': ['1,2,4', '1,2'],
  'polling-subscribers': ['400', '0'],
  transports: ['postgres,redis,polling', 'postgres,redis'],
  out: ['bench', 'bench/quick'],
} as const;

export function parseBenchOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      workers: { type: 'string', default: '2' },
      gateways: { type: 'string', default: '2' },
      subscribers: { type: 'string', default: '100' },
      tasks: { type: 'string', default: '4' },
      events: { type: 'string' },
      rate: { type: 'string', default: '1000' },
      'paced-events': { type: 'string' },
      nodes: { type: 'string' },
      concurrency: { type: 'string', default: '10' },
      'client-processes': { type: 'string', default: '2' },
      'scale-subscribers': { type: 'string' },
      'scale-gateways': { type: 'string' },
      'scale-gateway-subscribers': { type: 'string', default: '1000' },
      'scale-events': { type: 'string' },
      'idle-subscribers': { type: 'string' },
      'idle-window-s': { type: 'string' },
      'polling-subscribers': { type: 'string' },
      'poll-interval-ms': { type: 'string', default: '1000' },
      transports: { type: 'string' },
      'idle-transports': { type: 'string' },
      'full-transports': { type: 'string' },
      'raw-samples': { type: 'string' },
      'no-bullmq': { type: 'boolean', default: false },
      'timeout-s': { type: 'string', default: '120' },
      'cpu-profile': { type: 'boolean', default: false },
      'no-hint-key': { type: 'boolean', default: false },
      'separate-hints': { type: 'boolean', default: false },
      out: { type: 'string' },
      note: { type: 'string', default: '' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick === true;
  const raw = (name: keyof typeof values): string => {
    const given = values[name];
    if (given !== undefined) return String(given);
    const sized = SIZED[name as keyof typeof SIZED];
    return sized[quick ? 1 : 0];
  };
  const int = (name: keyof typeof values, min: number): number => {
    const text = raw(name);
    const value = Number(text);
    if (!Number.isInteger(value) || value < min)
      throw new BenchUsageError(`--${name} ${text}: expected an integer >= ${min}`);
    return value;
  };
  const intList = (name: keyof typeof values): number[] => {
    const list = raw(name)
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean)
      .map(Number);
    if (list.length === 0 || list.some((value) => !Number.isInteger(value) || value < 1))
      throw new BenchUsageError(`--${name} ${raw(name)}: expected a comma-separated list of integers >= 1`);
    return list;
  };
  const transportList = (name: 'transports' | 'idle-transports' | 'full-transports'): TransportName[] => {
    const list = raw(name)
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
    for (const item of list) {
      if (!['postgres', 'redis', 'polling'].includes(item))
        throw new BenchUsageError(`--${name}: unknown transport "${item}" (postgres, redis, polling)`);
    }
    return list as TransportName[];
  };
  const transports = transportList('transports');
  // Quick: the idle cost and the full run of the first transport only (each costs seconds of fixed set-up).
  const sizedTransports = (name: 'idle-transports' | 'full-transports'): TransportName[] =>
    values[name] !== undefined ? transportList(name) : quick ? transports.slice(0, 1) : transports;
  const idleTransports = sizedTransports('idle-transports');
  const stray = idleTransports.filter((name) => !transports.includes(name));
  if (stray.length > 0)
    throw new BenchUsageError(
      `--idle-transports ${stray.join(',')}: the idle cost is measured in a transport's pipeline phase; add it to --transports`,
    );
  return {
    quick,
    build: values['no-build'] !== true,
    workers: int('workers', 1),
    gateways: int('gateways', 1),
    subscribers: int('subscribers', 1),
    tasks: int('tasks', 1),
    events: int('events', 1),
    rate: int('rate', 1),
    pacedEvents: int('paced-events', 1),
    nodes: int('nodes', 1),
    concurrency: int('concurrency', 1),
    clientProcesses: int('client-processes', 1),
    scaleSubscribers: intList('scale-subscribers'),
    scaleGateways: intList('scale-gateways'),
    scaleGatewaySubscribers: int('scale-gateway-subscribers', 1),
    scaleEvents: int('scale-events', 1),
    idleSubscribers: int('idle-subscribers', 0),
    idleWindowS: int('idle-window-s', 1),
    pollingSubscribers: int('polling-subscribers', 0),
    pollIntervalMs: int('poll-interval-ms', 10),
    transports,
    idleTransports,
    fullTransports: sizedTransports('full-transports'),
    rawSamples: int('raw-samples', 50),
    bullmq: !values['no-bullmq'],
    timeoutS: int('timeout-s', 5),
    cpuProfile: values['cpu-profile'] === true,
    hintKey: values['no-hint-key'] !== true,
    combinedHints: values['separate-hints'] !== true,
    out: raw('out'),
    note: String(values.note),
  };
}

/** Pause before each event of a job so that `tasks` jobs together reach `rate` events/s. */
export function pacedPauseMs(options: Pick<BenchOptions, 'tasks' | 'rate'>): number {
  return Math.max(1, Math.round((options.tasks * 1000) / options.rate));
}

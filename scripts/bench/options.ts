import { parseArgs } from 'node:util';

export type TransportName = 'postgres' | 'redis' | 'polling';

/** Parameters of one bench run; the defaults finish in about three minutes on 2 idle cores. */
export interface BenchOptions {
  /** Worker processes (simulated cluster, zero latency in max runs). Default 2. */
  workers: number;
  /** Gateway processes; subscribers are spread over them. Default 2. */
  gateways: number;
  /** SSE subscribers per loaded run, spread over the tasks and gateways. Default 100. */
  subscribers: number;
  /** Tasks (drain batches) per loaded run. Default 4. */
  tasks: number;
  /** Nodes per task in the max run (about 6 events per node). Default 1000. */
  nodes: number;
  /** Nodes per task in the paced run. Default 250. */
  pacedNodes: number;
  /** Target events/s of the paced run (0 = no paced run). Default 2000. */
  rate: number;
  /** Nodes drained at once per task. Default 20. */
  concurrency: number;
  /** Idle SSE subscribers opened on one gateway to measure its memory per subscriber. Default 1000. */
  idleSubscribers: number;
  /** Seconds of each idle database-load window (with and without idle subscribers). Default 3. */
  idleWindowS: number;
  /** Subscribers of the second polling run (database load against subscriber count). Default 400; 0 skips it. */
  pollingSubscribers: number;
  /** PROGRESS_POLL_INTERVAL for the polling transport, ms. Default 1000. */
  pollIntervalMs: number;
  transports: TransportName[];
  /** Round trips timed for each raw floor. Default 2000. */
  rawSamples: number;
  bullmq: boolean;
  /** Limit for a child to start or a run to finish, seconds. Default 120. */
  timeoutS: number;
  /** Write V8 CPU profiles of the worker and gateway processes next to their logs. Default false. */
  cpuProfile: boolean;
  /** Directory for RESULTS.md and results.json. Default bench. */
  out: string;
}

const USAGE = `pnpm bench [options]
  --workers N              worker processes (2)
  --gateways N             gateway processes (2)
  --subscribers N          SSE subscribers per loaded run (100)
  --tasks N                tasks per loaded run (4)
  --nodes N                nodes per task in the max-rate run (1000)
  --paced-nodes N          nodes per task in the paced run (250)
  --rate N                 target events/s of the paced run, 0 = skip it (2000)
  --concurrency N          nodes at once per task (20)
  --idle-subscribers N     idle SSE streams for the gateway memory figure (1000)
  --idle-window-s N        seconds per idle database-load window (3)
  --polling-subscribers N  subscribers of the second polling run, 0 = skip (400)
  --poll-interval-ms N     polling interval (1000)
  --transports LIST        comma-separated: postgres,redis,polling
  --raw-samples N          raw pg_notify / PUBLISH round trips (2000)
  --no-bullmq              skip the BullMQ QueueEvents baseline
  --timeout-s N            limit for a child to start or a run to finish (120)
  --cpu-profile            write V8 CPU profiles of workers and gateways beside their logs
  --out DIR                where RESULTS.md and results.json go (bench)`;

export class BenchUsageError extends Error {
  constructor(message: string) {
    super(`${message}\n\n${USAGE}`);
    this.name = 'BenchUsageError';
  }
}

export function parseBenchOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workers: { type: 'string', default: '2' },
      gateways: { type: 'string', default: '2' },
      subscribers: { type: 'string', default: '100' },
      tasks: { type: 'string', default: '4' },
      nodes: { type: 'string', default: '1000' },
      'paced-nodes': { type: 'string', default: '250' },
      rate: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '20' },
      'idle-subscribers': { type: 'string', default: '1000' },
      'idle-window-s': { type: 'string', default: '3' },
      'polling-subscribers': { type: 'string', default: '400' },
      'poll-interval-ms': { type: 'string', default: '1000' },
      transports: { type: 'string', default: 'postgres,redis,polling' },
      'raw-samples': { type: 'string', default: '2000' },
      'no-bullmq': { type: 'boolean', default: false },
      'timeout-s': { type: 'string', default: '120' },
      'cpu-profile': { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: keyof typeof values, min: number): number => {
    const raw = String(values[name]);
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min)
      throw new BenchUsageError(`--${name} ${raw}: expected an integer >= ${min}`);
    return value;
  };
  const transports = String(values.transports)
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of transports) {
    if (!['postgres', 'redis', 'polling'].includes(name))
      throw new BenchUsageError(`--transports: unknown transport "${name}" (postgres, redis, polling)`);
  }
  return {
    workers: int('workers', 1),
    gateways: int('gateways', 1),
    subscribers: int('subscribers', 1),
    tasks: int('tasks', 1),
    nodes: int('nodes', 1),
    pacedNodes: int('paced-nodes', 1),
    rate: int('rate', 0),
    concurrency: int('concurrency', 1),
    idleSubscribers: int('idle-subscribers', 0),
    idleWindowS: int('idle-window-s', 1),
    pollingSubscribers: int('polling-subscribers', 0),
    pollIntervalMs: int('poll-interval-ms', 10),
    transports: transports as TransportName[],
    rawSamples: int('raw-samples', 50),
    bullmq: !values['no-bullmq'],
    timeoutS: int('timeout-s', 5),
    cpuProfile: values['cpu-profile'] === true,
    out: String(values.out),
  };
}

import type { ServerCpu } from './children.js';
import type { RunResult } from './measure.js';
import type { IdleResult } from './nodebatch-phase.js';
import { pacedPauseMs, type BenchOptions } from './options.js';
import type { RoundTrip } from './raw-floor.js';
import type { Quantiles, StageBreakdown } from './stage-timing.js';

/** Everything one bench run measured; written as results.json and rendered as RESULTS.md. */
export interface BenchResults {
  startedAt: string;
  durationS: number;
  machine: {
    os: string;
    cpus: string;
    cores: number;
    memoryGiB: number;
    loadAverage: number[];
    loadAverageAtEnd: number[];
  };
  versions: { node: string; postgres: string; redis: string; bullmq: string };
  options: BenchOptions;
  rawFloor: { pgNotify?: RoundTrip; pgCommitNotify?: RoundTrip; redisPublish?: RoundTrip };
  /** Pipeline runs (nodebatch transports and BullMQ) and the full runs on the simulated cluster. */
  runs: RunResult[];
  /** The scale table's runs (postgres pipeline, max rate). */
  scale: RunResult[];
  /** Stage timings of each transport's paced and max pipeline runs. */
  stages: StageBreakdown[];
  /** The unrecorded max run each pipeline system made before its measured runs. */
  warmUps: RunResult[];
  idle: Array<{ transport: string } & IdleResult>;
  errors: string[];
}

const ms = (value: number | undefined): string =>
  value === undefined || Number.isNaN(value) ? 'n/a' : value < 10 ? value.toFixed(2) : value.toFixed(1);
const num = (value: number | undefined, digits = 0): string =>
  value === undefined || Number.isNaN(value) || !Number.isFinite(value)
    ? 'n/a'
    : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** The raw round trip a transport's latency is compared with (polling has none: its floor is the interval). */
function rawFloorFor(results: BenchResults, transport: string): RoundTrip | undefined {
  if (transport === 'postgres') return results.rawFloor.pgNotify;
  if (transport === 'redis' || transport === 'bullmq') return results.rawFloor.redisPublish;
  return undefined;
}

const pipelineRuns = (results: BenchResults): RunResult[] =>
  results.runs.filter((run) => run.workload === 'pipeline');

function pipelineRun(
  results: BenchResults,
  transport: string,
  kind: 'paced' | 'max',
  subscribers = results.options.subscribers,
): RunResult | undefined {
  return pipelineRuns(results).find(
    (run) =>
      run.transport === transport &&
      run.kind === kind &&
      run.subscribers === subscribers &&
      run.append !== 'each' &&
      run.atRateOf === undefined,
  );
}

/** One column of a Markdown table: its heading, whether it holds figures (right-aligned), its cell in a row. */
interface Column<Row> {
  heading: string;
  figures?: boolean;
  cell(row: Row): string | number;
}

/** A Markdown table with a line per row. */
function markdownTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const line = (cells: ReadonlyArray<string | number>): string => `| ${cells.join(' | ')} |`;
  return [
    line(columns.map((column) => column.heading)),
    line(columns.map((column) => (column.figures ? '---:' : '---'))),
    ...rows.map((row) => line(columns.map((column) => column.cell(row)))),
  ].join('\n');
}

/** The columns several tables of runs share. */
const RUN_COLUMNS = {
  transport: { heading: 'transport', cell: (run) => run.transport },
  subscribers: { heading: 'subscribers', figures: true, cell: (run) => run.subscribers },
  p50: { heading: 'p50 ms', figures: true, cell: (run) => ms(run.latencyMs.p50) },
  p99: { heading: 'p99 ms', figures: true, cell: (run) => ms(run.latencyMs.p99) },
  eventsPerSec: { heading: 'events/s', figures: true, cell: (run) => num(run.eventsPerSec) },
  deliveriesPerSec: { heading: 'deliveries/s', figures: true, cell: (run) => num(run.deliveriesPerSec) },
  lost: { heading: 'lost', figures: true, cell: (run) => run.lost },
  duplicated: {
    heading: 'duplicated',
    figures: true,
    cell: (run) => `${run.duplicated}${run.incomplete ? ` (${run.incomplete} incomplete)` : ''}`,
  },
} satisfies Record<string, Column<RunResult>>;

/** BullMQ's run that a nodebatch pipeline run is compared with: same kind, same subscribers. */
function bullmqPeer(results: BenchResults, run: RunResult): RunResult | undefined {
  if (run.transport === 'bullmq') return undefined;
  return pipelineRun(results, 'bullmq', run.atRateOf === 'bullmq-max' ? 'max' : run.kind, run.subscribers);
}

/** A transport's paced run at the rate BullMQ's max run reached. */
function atBullmqMaxRate(results: BenchResults, transport: string): RunResult | undefined {
  return pipelineRuns(results).find((run) => run.transport === transport && run.atRateOf === 'bullmq-max');
}

function renderPipelineTable(results: BenchResults): string {
  const { transport, subscribers, p50, p99, eventsPerSec, deliveriesPerSec, lost, duplicated } = RUN_COLUMNS;
  const rawRatio = (run: RunResult): string => {
    if (run.transport === 'polling') {
      return `p99 − interval = ${ms(run.latencyMs.p99 - results.options.pollIntervalMs)} ms`;
    }
    const raw = rawFloorFor(results, run.transport);
    return raw ? `${num(run.latencyMs.p99 / raw.p99, 1)}×` : 'n/a';
  };
  const againstBullmq = (of: (run: RunResult) => number) => (run: RunResult) => {
    const bull = bullmqPeer(results, run);
    return bull ? `${num(of(run) / of(bull), 2)}×` : '—';
  };
  return markdownTable(
    [
      transport,
      {
        heading: 'run',
        cell: (run) =>
          `${run.kind}${run.atRateOf === 'bullmq-max' ? " at BullMQ's max rate" : ''}${run.kind === 'paced' ? ` (an event every ${ms(run.paceMs)} ms per job)` : ''}${run.append === 'each' ? ', one awaited append per event' : ''}`,
      },
      subscribers,
      p50,
      p99,
      { heading: 'max ms', figures: true, cell: (run) => ms(run.latencyMs.max) },
      eventsPerSec,
      {
        heading: 'events/s reported by the jobs (appended; BullMQ: updateProgress returned)',
        figures: true,
        cell: (run) => (run.reportedPerSec === undefined ? 'n/a' : num(run.reportedPerSec)),
      },
      deliveriesPerSec,
      lost,
      duplicated,
      { heading: 'p99 ÷ raw p99', figures: true, cell: rawRatio },
      {
        heading: 'events/s ÷ BullMQ',
        figures: true,
        cell: againstBullmq((run) => run.eventsPerSec),
      },
      {
        heading: 'p99 ÷ BullMQ p99',
        figures: true,
        cell: againstBullmq((run) => run.latencyMs.p99),
      },
    ],
    pipelineRuns(results),
  );
}

const q = (value: Quantiles | undefined): string => (value ? `${ms(value.p50)} / ${ms(value.p99)}` : 'n/a');

function renderStages(results: BenchResults): string {
  const stageColumn = (heading: string, of: (stage: StageBreakdown) => Quantiles | undefined) => ({
    heading,
    figures: true,
    cell: (stage: StageBreakdown) => q(of(stage)),
  });
  return markdownTable<StageBreakdown>(
    [
      { heading: 'transport', cell: (stage) => stage.transport },
      { heading: 'run', cell: (stage) => stage.kind },
      stageColumn(
        'append start → append returned (wait in the batcher, commit; redis: + PUBLISH) p50 / p99 ms',
        (stage) => stage.appendReturned,
      ),
      stageColumn('append start → hint at a listener', (stage) => stage.hintAtListener),
      stageColumn('append start → gateway socket write (histogram)', (stage) => stage.gatewayWrite),
      stageColumn(
        "the gateways' event-loop delay over the run (the one with the largest p99) p50 / p99 ms",
        (stage) => stage.gatewayDelay,
      ),
      stageColumn('append start → client arrival', (stage) => stage.clientArrival),
      {
        heading: 'raw p99 ms (idle machine)',
        figures: true,
        cell: (stage) => {
          const raw = rawFloorFor(results, stage.transport);
          return raw ? ms(raw.p99) : `interval ${results.options.pollIntervalMs}`;
        },
      },
      stageColumn(
        'durable floor during the run (committed INSERT + NOTIFY → LISTEN; redis: commit, then PUBLISH → SUBSCRIBE) p50 / p99 ms',
        (stage) => stage.loadedFloor,
      ),
      {
        heading:
          "the observers' own lag: event-loop delay in the hint listener's process; in the SSE client processes (the one with the largest p99) p50 / p99 ms",
        figures: true,
        cell: (stage) => `${q(stage.listenerDelay)}; ${q(stage.clientDelay)}`,
      },
      { heading: 'largest p99 step', cell: (stage) => limitingStage(stage)?.name ?? 'n/a' },
    ],
    results.stages,
  );
}

/** How the transport's latency compares with BullMQ's at the load BullMQ's max run reached. */
function equalLoadNote(results: BenchResults, transport: string, bullMax: RunResult): string {
  const run = atBullmqMaxRate(results, transport);
  if (!run) return '';
  const lower = run.latencyMs.p99 <= bullMax.latencyMs.p99;
  return ` At BullMQ's max rate (${num(bullMax.eventsPerSec)} events/s; this paced run reached ${num(run.eventsPerSec)}, lost ${run.lost}, duplicated ${run.duplicated}) the p99 was ${ms(run.latencyMs.p99)} ms against BullMQ's ${ms(bullMax.latencyMs.p99)}: ${lower ? 'no higher' : `${num(run.latencyMs.p99 / bullMax.latencyMs.p99, 1)}× higher`} at that load${lower ? '' : equalLoadCapacity(results, run, bullMax)}.`;
}

/**
 * Whether the machine had the CPU for BullMQ's rate at the CPU an event cost
 * in the paced run: when it had not, events queued and the wait is the p99.
 */
function equalLoadCapacity(results: BenchResults, run: RunResult, bullMax: RunResult): string {
  const perEvent = machineCpuPerEvent(results, run);
  if (perEvent === undefined) return '';
  const cores = perEvent * bullMax.eventsPerSec;
  const { cores: machineCores } = results.machine;
  return ` (at the CPU an event cost in that run, ${num(perEvent * 1e6)} µs of machine CPU, BullMQ's rate takes ${num(cores, 2)} cores of this machine's ${machineCores}${cores > machineCores ? ': more than there are, so events queued behind the CPU' : ''})`;
}

/**
 * A max run whose jobs reported events faster than they were delivered:
 * the difference waited between the transport and the subscribers, and that
 * wait is the run's latency.
 */
function backlogNote(run: RunResult): string {
  if (run.reportedPerSec === undefined || run.reportedPerSec <= run.eventsPerSec * 1.05) return '';
  // When the jobs had reported their last event, delivery had covered only this share of them.
  const backlog = run.events * (1 - run.eventsPerSec / run.reportedPerSec);
  return ` The jobs reported ${num(run.reportedPerSec)} events/s and delivery reached ${num(run.eventsPerSec)}: when the last event was reported, about ${num(backlog)} of the ${num(run.events)} were still on their way to the subscribers; that wait is the latency.`;
}

function stageOf(
  results: BenchResults,
  transport: string,
  kind: 'paced' | 'max',
): StageBreakdown | undefined {
  return results.stages.find((stage) => stage.transport === transport && stage.kind === kind);
}

/**
 * The observers an event passes, in order, each timed from the append start:
 * `point` names the observer, `step` what lies between it and the one before.
 */
const STAGE_POINTS: ReadonlyArray<{
  point: string;
  step: string;
  of: (stage: StageBreakdown) => Quantiles | undefined;
}> = [
  {
    point: 'append returned',
    step: 'batching and commit (append start → append returned)',
    of: (stage) => stage.appendReturned,
  },
  { point: 'hint', step: 'transport (append returned → hint)', of: (stage) => stage.hintAtListener },
  { point: 'socket write', step: 'gateway (hint → socket write)', of: (stage) => stage.gatewayWrite },
  { point: 'client', step: 'socket and client (write → arrival)', of: (stage) => stage.clientArrival },
];

/** A run's p99 at each observer, in order: where its latency accumulates. */
function stagePath(stage: StageBreakdown): string {
  return STAGE_POINTS.flatMap(({ point, of }) => {
    const value = of(stage);
    return value ? [`${point} ${ms(value.p99)}`] : [];
  }).join(' → ');
}

/** The step between consecutive observers with the largest p99 increase: where a latency miss comes from. */
function limitingStage(stage: StageBreakdown): { name: string; ms: number } | undefined {
  let previous = 0;
  let best: { name: string; ms: number } | undefined;
  for (const { step: name, of } of STAGE_POINTS) {
    const value = of(stage)?.p99;
    if (value === undefined) continue;
    const step = value - previous;
    if (!best || step > best.ms) best = { name, ms: step };
    previous = Math.max(previous, value);
  }
  return best;
}

function renderCpu(results: BenchResults): string {
  type Group = 'workers' | 'gateways' | 'clients';
  const seconds = (run: RunResult, group: Group) => run.cpuSeconds![group];
  /** CPU seconds, and their share of one core over the run's window. */
  const busy = (run: RunResult, cpuSeconds: number) =>
    `${num(cpuSeconds, 1)} (${num((cpuSeconds / (run.windowMs / 1000)) * 100)}%)`;
  const busyColumn = (heading: string, group: Group): Column<RunResult> => ({
    heading,
    figures: true,
    cell: (run) => busy(run, seconds(run, group)),
  });
  const serverColumn = (
    heading: string,
    cell: (servers: ServerCpu & { run: RunResult }) => string,
  ): Column<RunResult> => ({
    heading,
    figures: true,
    cell: (run) => (run.serverCpuSeconds ? cell({ ...run.serverCpuSeconds, run }) : 'n/a'),
  });
  const per1000Column = (heading: string, group: Group): Column<RunResult> => ({
    heading,
    figures: true,
    cell: (run) => num((seconds(run, group) / run.events) * 1000, 3),
  });
  return markdownTable(
    [
      RUN_COLUMNS.transport,
      {
        heading: 'run',
        cell: (run) => `${run.workload} ${run.kind}${run.append === 'each' ? ', one append per event' : ''}`,
      },
      RUN_COLUMNS.subscribers,
      {
        heading: 'machine CPU busy (all cores, everything)',
        figures: true,
        cell: (run) => (run.machineBusy === undefined ? 'n/a' : `${num(run.machineBusy * 100)}%`),
      },
      {
        heading: 'CPU pressure (share of the time some runnable task waited for a core)',
        figures: true,
        cell: (run) => (run.cpuPressure === undefined ? 'n/a' : `${num(run.cpuPressure * 100)}%`),
      },
      busyColumn('workers CPU s (% of one core over the window)', 'workers'),
      {
        heading: 'of which the simulated cluster',
        figures: true,
        cell: (run) => (run.cpuSeconds!.simulator === undefined ? '—' : busy(run, run.cpuSeconds!.simulator)),
      },
      busyColumn('gateways CPU s', 'gateways'),
      busyColumn('SSE clients CPU s', 'clients'),
      serverColumn('PostgreSQL CPU s (every server process)', (servers) =>
        busy(servers.run, servers.postgres),
      ),
      serverColumn('Redis CPU s', (servers) => busy(servers.run, servers.redis)),
      per1000Column('workers CPU s per 1,000 events', 'workers'),
      per1000Column('gateways', 'gateways'),
      per1000Column('clients', 'clients'),
      serverColumn('PostgreSQL', (servers) => num((servers.postgres / servers.run.events) * 1000, 3)),
      serverColumn('Redis', (servers) => num((servers.redis / servers.run.events) * 1000, 3)),
    ],
    results.runs.filter((run) => run.cpuSeconds),
  );
}

/** Gateway CPU seconds per million deliveries of a run. */
function gatewayCpuPerMillion(run: RunResult): number {
  return ((run.cpuSeconds?.gateways ?? NaN) / run.deliveries) * 1e6;
}

function renderScale(results: BenchResults): string {
  const { p50, p99, eventsPerSec, deliveriesPerSec, lost, duplicated } = RUN_COLUMNS;
  return markdownTable(
    [
      { heading: 'subscribers', figures: true, cell: (run) => num(run.subscribers) },
      { heading: 'gateways', figures: true, cell: (run) => run.gateways },
      { heading: 'events', figures: true, cell: (run) => num(run.events) },
      { heading: 'deliveries', figures: true, cell: (run) => num(run.deliveries) },
      eventsPerSec,
      deliveriesPerSec,
      p50,
      p99,
      lost,
      duplicated,
      { heading: 'gateways CPU s', figures: true, cell: (run) => num(run.cpuSeconds?.gateways, 1) },
      {
        heading: 'gateway CPU-s per million deliveries',
        figures: true,
        cell: (run) => num(gatewayCpuPerMillion(run), 1),
      },
    ],
    results.scale,
  );
}

function renderIdle(results: BenchResults): string {
  type Idle = BenchResults['idle'][number];
  const figure = (heading: string, cell: (idle: Idle) => string | number): Column<Idle> => ({
    heading,
    figures: true,
    cell,
  });
  const mib = (bytes: number) => num(bytes / 2 ** 20, 1);
  return markdownTable(
    [
      { heading: 'transport', cell: (idle) => idle.transport },
      figure('N idle SSE subscribers (gateway 1)', (idle) => idle.subscribers),
      figure('gateway RSS before, MiB', (idle) => mib(idle.rssBeforeBytes)),
      figure('after, MiB', (idle) => mib(idle.rssAfterBytes)),
      figure('KiB per 1,000 subscribers', (idle) => num(idle.rssPer1000Bytes / 1024)),
      figure('gateway CPU s per minute per 1,000 idle subscribers', (idle) =>
        num(idle.cpuPer1000PerMinute, 3),
      ),
      figure('idle db tx/s, no subscriber', (idle) => num(idle.idleTxPerSecNoSubscribers, 1)),
      figure('1 subscriber', (idle) => num(idle.idleTxPerSecOneSubscriber, 1)),
      figure('1 + N subscribers', (idle) => num(idle.idleTxPerSecWithSubscribers, 1)),
    ],
    results.idle,
  );
}

function renderFull(results: BenchResults): string {
  const { transport, subscribers, p50, p99, eventsPerSec, deliveriesPerSec, lost, duplicated } = RUN_COLUMNS;
  return markdownTable(
    [
      transport,
      subscribers,
      p50,
      p99,
      eventsPerSec,
      deliveriesPerSec,
      lost,
      duplicated,
      { heading: 'db tx/s', figures: true, cell: (run) => num(run.dbTxPerSec) },
      { heading: 'db tx per 1,000 events', figures: true, cell: (run) => num(run.dbTxPer1000Events) },
      { heading: 'peak db connections', figures: true, cell: (run) => run.peakConnections ?? 'n/a' },
    ],
    results.runs.filter((run) => run.workload === 'full'),
  );
}

/** Where the CPU of a run's window went, for a throughput miss: the busiest process group and the machine's load. */
function cpuLimit(results: BenchResults, run: RunResult): string {
  const cpu = run.cpuSeconds;
  if (!cpu) return 'no CPU figures';
  const windowS = run.windowMs / 1000;
  const groups: Array<[string, number]> = [
    ['workers', cpu.workers],
    ['gateways', cpu.gateways],
    ['SSE clients', cpu.clients],
  ];
  const total = groups.reduce((sum, [, seconds]) => sum + seconds, 0);
  const [name, seconds] = groups.sort((a, b) => b[1] - a[1])[0]!;
  const machine =
    run.machineBusy === undefined
      ? ''
      : `the machine's ${results.machine.cores} cores were ${num(run.machineBusy * 100)}% busy (everything running, PostgreSQL and Redis included)${pressureNote(run)}; `;
  return `${machine}the measured processes used ${num(total / windowS, 2)} cores over the window; busiest: ${name} at ${num((seconds / windowS) * 100)}% of a core`;
}

/** How much of the run some runnable task spent waiting for a core, when the kernel says (PSI). */
function pressureNote(run: RunResult): string {
  return run.cpuPressure === undefined
    ? ''
    : `, and for ${num(run.cpuPressure * 100)}% of the time some runnable task waited for a core`;
}

/**
 * Whether this machine has the CPU for a target rate at the CPU an event cost
 * in this run: the whole machine's CPU per event (every process, PostgreSQL
 * and Redis included) and the SSE clients' alone, times the target rate,
 * against the cores there are.
 */
function capacityNote(
  results: BenchResults,
  run: RunResult,
  targetEventsPerSec: number,
  baseline?: RunResult,
): string {
  const machinePerEvent = machineCpuPerEvent(results, run);
  if (machinePerEvent === undefined || !run.cpuSeconds) return '';
  const { cores } = results.machine;
  const clientsPerEvent = run.cpuSeconds.clients / run.events;
  const need = (perEvent: number): string => num(perEvent * targetEventsPerSec, 2);
  const baselinePerEvent = baseline && machineCpuPerEvent(results, baseline);
  // The baseline's own cost per event says whether the target rate fits this
  // machine at all, whatever nodebatch does.
  const atBaseline =
    baselinePerEvent === undefined
      ? ''
      : `; at BullMQ's own CPU per event in its max run (${num(baselinePerEvent * 1e6)} µs of machine CPU), that rate would take ${need(baselinePerEvent)} cores`;
  return `; at the CPU an event cost in this run (${num(machinePerEvent * 1e6)} µs of machine CPU, all processes; ${num(clientsPerEvent * 1e6)} µs of it in the SSE clients for its ${num(run.deliveries / run.events, 0)} deliveries), ${num(targetEventsPerSec)} events/s would take ${need(machinePerEvent)} cores (the clients alone ${need(clientsPerEvent)}) of this machine's ${cores}${atBaseline}`;
}

/** Seconds of machine CPU (all cores, every process) per event of a run. */
function machineCpuPerEvent(results: BenchResults, run: RunResult): number | undefined {
  if (run.machineBusy === undefined || run.events === 0) return undefined;
  return (run.machineBusy * results.machine.cores * (run.windowMs / 1000)) / run.events;
}

/**
 * What the bare durable round trip took while the paced run loaded the
 * machine, against the target: whether the target is below what the machine
 * gives one commit and notification at that load, or how much the pipeline
 * adds over it.
 */
function loadedFloorNote(floor: Quantiles, raw: RoundTrip, run: RunResult): string {
  const busy =
    run.machineBusy === undefined ? '' : ` (machine ${num(run.machineBusy * 100)}% busy${pressureNote(run)})`;
  const sampled = `; sampled during this run${busy}, the bare durable round trip took p50 / p99 ${q(floor)} ms, ${num(floor.p99 / raw.p99, 1)}× the idle raw p99`;
  return floor.p99 >= raw.p99 * 10
    ? `${sampled}: the target is below what this machine gives one commit and notification at that load`
    : `${sampled}: the pipeline adds ${ms(run.latencyMs.p99 - floor.p99)} ms at p99 over it`;
}

/** The observers' own event-loop delay: part of what each of them times. */
function observerLagNote(stage: StageBreakdown): string {
  const lags = [
    stage.listenerDelay && `the hint listener's process p50 / p99 ${q(stage.listenerDelay)} ms`,
    stage.clientDelay && `the busiest SSE client process p50 / p99 ${q(stage.clientDelay)} ms`,
  ].filter(Boolean);
  return lags.length === 0
    ? ''
    : `; the observers' own event-loop delays, part of the stage each times: ${lags.join(', ')}`;
}

/** The issue 15 targets, MET or MISSED, each with its figures and, for a miss, the stage that limits it. */
export function renderTargets(results: BenchResults): string[] {
  const lines: string[] = [];
  const bullMax = pipelineRun(results, 'bullmq', 'max');
  for (const transport of ['postgres', 'redis']) {
    const run = pipelineRun(results, transport, 'max');
    if (!run || !bullMax) continue;
    const ratio = run.eventsPerSec / bullMax.eventsPerSec;
    const clean = run.lost === 0 && run.duplicated === 0 && run.incomplete === 0;
    const ok = ratio >= 2 && clean && run.latencyMs.p99 <= bullMax.latencyMs.p99;
    const stage = stageOf(results, transport, 'max');
    const limit = stage && limitingStage(stage);
    lines.push(
      `- **${ok ? 'MET' : 'MISSED'}** pipeline, ${run.subscribers} subscribers, ${transport} ≥ 2× BullMQ events/s at ≤ its p99, 0 lost / 0 duplicated: ${num(run.eventsPerSec)} vs ${num(bullMax.eventsPerSec)} events/s = ${num(ratio, 2)}×; p99 ${ms(run.latencyMs.p99)} vs ${ms(bullMax.latencyMs.p99)} ms; lost ${run.lost}, duplicated ${run.duplicated}` +
        (ok
          ? ''
          : `.${equalLoadNote(results, transport, bullMax)}${backlogNote(run)} ${limit ? `Largest p99 step: ${limit.name}, +${ms(limit.ms)} ms (stages p99: ${stagePath(stage!)}${stage?.gatewayDelay ? `; the gateways' event-loop delay p50 / p99 ${q(stage.gatewayDelay)} ms` : ''}). ` : ''}Limit: ${cpuLimit(results, run)} (BullMQ: ${cpuLimit(results, bullMax)})${capacityNote(results, run, 2 * bullMax.eventsPerSec, bullMax)}`),
    );
  }
  for (const transport of ['postgres', 'redis']) {
    const run = pipelineRun(results, transport, 'paced');
    const raw = rawFloorFor(results, transport);
    if (!run || !raw) continue;
    const ok = run.latencyMs.p99 <= raw.p99 * 10 && run.lost === 0 && run.duplicated === 0;
    const stage = stageOf(results, transport, 'paced');
    const limit = stage ? limitingStage(stage) : undefined;
    const commit = results.rawFloor.pgCommitNotify;
    lines.push(
      `- **${ok ? 'MET' : 'MISSED'}** paced at ${results.options.rate} events/s (reached ${num(run.eventsPerSec)}), ${run.subscribers} subscribers, ${transport} p99 within 10× the raw round trip: p99 ${ms(run.latencyMs.p99)} ms vs 10 × ${ms(raw.p99)} = ${ms(raw.p99 * 10)} ms` +
        (ok || !limit ? '' : `. Limiting stage: ${limit.name}, +${ms(limit.ms)} ms at p99`) +
        (ok || !commit
          ? ''
          : `; append returned p50 / p99 ${q(stage?.appendReturned)} ms; this machine's durable commit floor (committed INSERT + pg_notify → LISTEN) is p50 ${ms(commit.p50)} / p99 ${ms(commit.p99)} ms idle, ${num(commit.p99 / raw.p99, 1)}× the raw round trip by itself`) +
        (ok || !stage?.loadedFloor ? '' : loadedFloorNote(stage.loadedFloor, raw, run)) +
        (ok || !stage ? '' : observerLagNote(stage)),
    );
  }
  const polling = pipelineRun(results, 'polling', 'paced');
  if (polling) {
    const limitMs = results.options.pollIntervalMs + 50;
    const ok = polling.latencyMs.p99 <= limitMs && polling.lost === 0 && polling.duplicated === 0;
    lines.push(
      `- **${ok ? 'MET' : 'MISSED'}** paced, ${polling.subscribers} subscribers, polling p99 within the interval + 50 ms: p99 ${ms(polling.latencyMs.p99)} ms vs ${limitMs} ms` +
        (ok ? '' : `. Limit: ${cpuLimit(results, polling)}`),
    );
  }
  const small = results.scale.find(
    (run) => run.subscribers === Math.min(...results.scale.map((r) => r.subscribers)),
  );
  const large = results.scale.find(
    (run) => run.subscribers === Math.max(...results.scale.map((r) => r.subscribers)),
  );
  if (small && large && small !== large) {
    const ratio = gatewayCpuPerMillion(large) / gatewayCpuPerMillion(small);
    lines.push(
      `- **${ratio <= 1.2 ? 'MET' : 'MISSED'}** gateway CPU linear in deliveries: ${num(gatewayCpuPerMillion(large), 1)} CPU-s per million deliveries at ${num(large.subscribers)} subscribers vs ${num(gatewayCpuPerMillion(small), 1)} at ${num(small.subscribers)} = ${num(ratio, 2)}× (limit 1.2×)` +
        (ratio <= 1.2 ? '' : `. Limit: ${cpuLimit(results, large)}`),
    );
  }
  return lines;
}

/** What the command prints at the end: the pipeline table and the targets. */
export function renderSummary(results: BenchResults): string {
  return `${renderPipelineTable(results)}\n\n${renderTargets(results).join('\n')}`;
}

export function renderMarkdown(results: BenchResults): string {
  const o = results.options;
  const raw = results.rawFloor;
  const rawFloor = markdownTable<[string, RoundTrip | undefined]>(
    [
      { heading: 'round trip', cell: ([name]) => name },
      { heading: 'p50 ms', figures: true, cell: ([, trip]) => (trip ? ms(trip.p50) : 'n/a') },
      { heading: 'p99 ms', figures: true, cell: ([, trip]) => (trip ? ms(trip.p99) : 'n/a') },
      { heading: 'max ms', figures: true, cell: ([, trip]) => (trip ? ms(trip.max) : 'n/a') },
      { heading: 'samples', figures: true, cell: ([, trip]) => trip?.samples ?? 0 },
    ],
    [
      ['pg_notify → LISTEN', raw.pgNotify],
      ['committed INSERT + pg_notify (one transaction, fsync) → LISTEN', raw.pgCommitNotify],
      ['Redis PUBLISH → SUBSCRIBE', raw.redisPublish],
    ],
  );
  const load = results.machine.loadAverage;
  return `# nodebatch benchmark results

Written by \`pnpm bench${o.quick ? ' --quick' : ''}\` (scripts/bench/main.ts) on ${results.startedAt}, in ${num(results.durationS)} s. Every figure below was measured in that run.

## Machine and versions
- ${results.machine.os}; ${results.machine.cores} × ${results.machine.cpus}; ${num(results.machine.memoryGiB, 1)} GiB memory; load average (1/5/15 min) at start ${load.map((value) => value.toFixed(2)).join(' / ')}, at end ${results.machine.loadAverageAtEnd.map((value) => value.toFixed(2)).join(' / ')}${(load[0] ?? 0) > 0.5 ? ' (other processes shared the cores during the run)' : ''}
- Node ${results.versions.node}; ${results.versions.postgres}; Redis ${results.versions.redis}; BullMQ ${results.versions.bullmq}${o.note ? `\n- Note: ${o.note}` : ''}

## Parameters
\`${JSON.stringify(o)}\`

- Every measured process runs built JavaScript with plain \`node\`: \`nodebatch gateway\` / \`nodebatch worker\` as \`node services/cli/dist/main.js\` (the bench builds first and refuses a stale dist), the producers and the BullMQ baseline as \`.mjs\` scripts (scripts/bench/pipeline). The observers run outside the bench process too: the SSE clients in ${o.clientProcesses} process${o.clientProcesses === 1 ? '' : 'es'} of their own (pipeline/sse-clients.mjs; a run's subscribers are split between them in contiguous slices), the stage table's hint listener in another (pipeline/hint-listener.mjs); each records arrival times in its own process and hands over its tallies (every seq seen, duplicates, reconnects) and latency samples at the end of a run. The bench process only drives them: it times no delivery itself.
- **Pipeline runs** (nodebatch and BullMQ run the identical job body): ${o.workers} producer processes, each a BullMQ Worker taking ${o.tasks} jobs from a queue; a job reports N progress events (\`NodeProgress\` {node, done, total, 64-byte message}; BullMQ: an awaited \`job.updateProgress\` with the same fields) one after another, then the terminal event. nodebatch's job reports them the way \`nodebatch worker\` does, through the worker's event batcher and append group (events pushed while an append is in flight share the next transaction, and so do the batches of a producer's jobs that wait at the same time; each transaction goes through the runtime's notifier, NOTIFY in it or PUBLISH after it, ${o.combinedHints ? 'one for all its tasks as far as they fit (PROGRESS_COMBINED_HINTS=true)' : 'one per task (PROGRESS_COMBINED_HINTS=false)'}; an event's time is its push time, so its wait in the batcher counts); the rows "one awaited append per event" show the same job with one transaction per event, awaited like updateProgress (the commit floor). BullMQ's ${o.gateways} gateway processes each hold one \`QueueEvents\`. **paced**: ${o.pacedEvents} events per job, one every ${pacedPauseMs(o)} ms on an absolute schedule (${o.rate} events/s over all jobs; the rate reached is measured); **max**: ${o.events} events per job, no pause; **paced at BullMQ's max rate** (postgres and redis): the max run's ${o.events} events per job on an absolute schedule at the events/s BullMQ's max run reached (the BullMQ baseline runs first), so that latency compares at the same load. ${o.subscribers} SSE subscribers (subscriber i on job i mod ${o.tasks} through gateway i mod ${o.gateways}), all live before the jobs exist.
- **Full runs**: nodebatch's own worker (\`nodebatch worker\`) drains ${o.nodes} nodes per task, ${o.concurrency} at once, on the simulated cluster with zero latency; the simulated cluster's CPU (self time of packages/kube in the workers' CPU profiles, whose start-up and drain code it runs in) is shown on its own column.
- Latency: client arrival time minus the event's \`time\` (the append start, set by the producer; same machine clock), for every event after seq 1 at every subscriber. events/s: timed events ÷ (last delivery − first timed event's append); deliveries/s counts each subscriber's copy. Lost and duplicated: every seq 1..N+2 of every subscriber is accounted for.

## Raw floor (one at a time, send → arrival on the listening connection)
${rawFloor}

## Pipeline runs: nodebatch against BullMQ, identical job body (append → SSE client)
${renderPipelineTable(results)}

Before its measured runs, each pipeline system (every transport, and BullMQ) makes its max run once, unrecorded (${results.warmUps.map((run) => `${run.transport} ${num(run.events)} events at ${num(run.eventsPerSec)} events/s`).join(', ') || 'none in this run'}): measured, the first max run through fresh gateway and SSE client processes cost the gateways 1.7× and the clients 2.9× the CPU per event of the same run repeated, so whichever system went first paid for it.

In the **max** runs both job bodies make their next event only when the pipeline takes it: BullMQ's job issues its next update once the previous one returned; nodebatch's job keeps at most 200 events pushed and not yet appended (two of the batcher's batches: one in flight, one filling) and waits beyond that. Either way an event is stamped when it is made, after any wait, so its latency is the pipeline's, not a backlog's. The paced runs, at the same schedule on both sides, compare latency like for like.

Latency distributions: [paced runs](latency-paced.svg), [max runs](latency-max.svg).

![latency distribution, paced runs](latency-paced.svg)

## Latency by stage (pipeline runs)
Each stage is timed from the same start, the event's append start, by a different observer: the producer (append returned), a LISTEN / SUBSCRIBE connection on the transport's channel in a process of its own (hint at a listener; events announced by reference are not timed), the gateways' own delivery-lag histogram read from /metrics before and after the run (socket write; quantiles interpolated inside their bucket, as Prometheus' histogram_quantile does, so to the bucket's precision), and the SSE clients in their processes. Each observer's own event-loop delay, sampled inside its process during the run, is shown too: it is part of what that observer times. So is the gateways' (prom-client's default metrics, read from the same scrapes): a gateway stage that grows while the gateways' event loops stay free points at a wait, not at their CPU. Another process of its own repeats the bare durable round trip every 10 ms during the run (pipeline/loaded-floor.mjs): what this machine gives one commit and notification at that load. The max runs add no observer process of their own (no hint listener, no durable-floor sampler), so that their throughput is not shared: their rows show what the producers, the gateways and the clients tell. The largest p99 step points at the stage that limits a miss; differences of quantiles are indicative, not exact.

${renderStages(results)}

## Scale (postgres, pipeline max run; the same ${o.tasks} jobs of ${o.scaleEvents} events in every run, so deliveries grow with the subscribers)
${renderScale(results)}

## Idle subscribers
${renderIdle(results)}

## Full runs: nodebatch's worker on the simulated cluster (max rate)
${renderFull(results)}

## Where the CPU went (user + system time from /proc, during each run)
${renderCpu(results)}

The PostgreSQL and Redis columns sum every process of that server on the machine (PostgreSQL's exited backends through their postmaster's children time); the bench runs alone, so that is the bench's load on them. The BullMQ baseline uses Redis only; nodebatch's producers take their jobs from BullMQ on Redis too.

## Targets (issue 15)
${renderTargets(results).join('\n')}
${results.errors.length > 0 ? `\n## Errors during the run\n${results.errors.map((error) => `- ${error.split('\n').join('\n  ')}`).join('\n')}\n` : ''}`;
}

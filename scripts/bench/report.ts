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
  /** Stage timings of each transport's paced pipeline run. */
  stages: StageBreakdown[];
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
      run.append !== 'each',
  );
}

const lostCell = (run: RunResult): string =>
  `${run.lost} | ${run.duplicated}${run.incomplete ? ` (${run.incomplete} incomplete)` : ''}`;

function renderPipelineTable(results: BenchResults): string {
  const rows = pipelineRuns(results).map((run) => {
    const raw = rawFloorFor(results, run.transport);
    const bull =
      run.transport === 'bullmq' ? undefined : pipelineRun(results, 'bullmq', run.kind, run.subscribers);
    const rawRatio =
      run.transport === 'polling'
        ? `p99 − interval = ${ms(run.latencyMs.p99 - results.options.pollIntervalMs)} ms`
        : raw
          ? `${num(run.latencyMs.p99 / raw.p99, 1)}×`
          : 'n/a';
    const how = run.append === 'each' ? ', one awaited append per event' : '';
    return `| ${run.transport} | ${run.kind}${run.kind === 'paced' ? ` (an event every ${run.paceMs} ms per job)` : ''}${how} | ${run.subscribers} | ${ms(run.latencyMs.p50)} | ${ms(run.latencyMs.p99)} | ${ms(run.latencyMs.max)} | ${num(run.eventsPerSec)} | ${num(run.deliveriesPerSec)} | ${lostCell(run)} | ${rawRatio} | ${bull ? `${num(run.eventsPerSec / bull.eventsPerSec, 2)}×` : '—'} | ${bull ? `${num(run.latencyMs.p99 / bull.latencyMs.p99, 2)}×` : '—'} |`;
  });
  return [
    '| transport | run | subscribers | p50 ms | p99 ms | max ms | events/s | deliveries/s | lost | duplicated | p99 ÷ raw p99 | events/s ÷ BullMQ | p99 ÷ BullMQ p99 |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

const q = (value: Quantiles | undefined): string => (value ? `${ms(value.p50)} / ${ms(value.p99)}` : 'n/a');

function renderStages(results: BenchResults): string {
  const rows = results.stages.map((stage) => {
    const raw = rawFloorFor(results, stage.transport);
    return `| ${stage.transport} | ${q(stage.appendReturned)} | ${q(stage.hintAtListener)} | ${q(stage.gatewayWrite)} | ${q(stage.clientArrival)} | ${raw ? ms(raw.p99) : `interval ${results.options.pollIntervalMs}`} | ${q(stage.loadedFloor)} | ${limitingStage(stage)?.name ?? 'n/a'} |`;
  });
  return [
    '| transport | append start → append returned (commit; redis: + PUBLISH) p50 / p99 ms | append start → hint at a listener | append start → gateway socket write (histogram) | append start → client arrival | raw p99 ms (idle machine) | durable floor during the run (committed INSERT + NOTIFY → LISTEN; redis: commit, then PUBLISH → SUBSCRIBE) p50 / p99 ms | largest p99 step |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows,
  ].join('\n');
}

/** The step between consecutive observers with the largest p99 increase: where a latency miss comes from. */
function limitingStage(stage: StageBreakdown): { name: string; ms: number } | undefined {
  const points: Array<[string, number | undefined]> = [
    ['commit and transport (append start → hint)', stage.hintAtListener?.p99],
    ['gateway (hint → socket write)', stage.gatewayWrite?.p99],
    ['socket and client (write → arrival)', stage.clientArrival.p99],
  ];
  let previous = 0;
  let best: { name: string; ms: number } | undefined;
  for (const [name, value] of points) {
    if (value === undefined) continue;
    const step = value - previous;
    if (!best || step > best.ms) best = { name, ms: step };
    previous = Math.max(previous, value);
  }
  return best;
}

function cpuRow(run: RunResult): string {
  const cpu = run.cpuSeconds!;
  const per1000 = (seconds: number) => num((seconds / run.events) * 1000, 3);
  const busy = (seconds: number) => num((seconds / (run.windowMs / 1000)) * 100);
  const simulator = cpu.simulator === undefined ? '—' : `${num(cpu.simulator, 1)} (${busy(cpu.simulator)}%)`;
  const how = run.append === 'each' ? ', one append per event' : '';
  const machine = run.machineBusy === undefined ? 'n/a' : `${num(run.machineBusy * 100)}%`;
  return `| ${run.transport} | ${run.workload} ${run.kind}${how} | ${run.subscribers} | ${machine} | ${num(cpu.workers, 1)} (${busy(cpu.workers)}%) | ${simulator} | ${num(cpu.gateways, 1)} (${busy(cpu.gateways)}%) | ${num(cpu.clients, 1)} (${busy(cpu.clients)}%) | ${per1000(cpu.workers)} | ${per1000(cpu.gateways)} | ${per1000(cpu.clients)} |`;
}

function renderCpu(results: BenchResults): string {
  return [
    '| transport | run | subscribers | machine CPU busy (all cores, everything) | workers CPU s (% of one core over the window) | of which the simulated cluster | gateways CPU s | SSE clients CPU s | workers CPU s per 1,000 events | gateways | clients |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.runs.filter((run) => run.cpuSeconds).map(cpuRow),
  ].join('\n');
}

/** Gateway CPU seconds per million deliveries of a run. */
function gatewayCpuPerMillion(run: RunResult): number {
  return ((run.cpuSeconds?.gateways ?? NaN) / run.deliveries) * 1e6;
}

function renderScale(results: BenchResults): string {
  return [
    '| subscribers | gateways | events | deliveries | events/s | deliveries/s | p50 ms | p99 ms | lost | duplicated | gateways CPU s | gateway CPU-s per million deliveries |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.scale.map(
      (run) =>
        `| ${num(run.subscribers)} | ${run.gateways} | ${num(run.events)} | ${num(run.deliveries)} | ${num(run.eventsPerSec)} | ${num(run.deliveriesPerSec)} | ${ms(run.latencyMs.p50)} | ${ms(run.latencyMs.p99)} | ${lostCell(run)} | ${num(run.cpuSeconds?.gateways, 1)} | ${num(gatewayCpuPerMillion(run), 1)} |`,
    ),
  ].join('\n');
}

function renderIdle(results: BenchResults): string {
  return [
    '| transport | N idle SSE subscribers (gateway 1) | gateway RSS before, MiB | after, MiB | KiB per 1,000 subscribers | gateway CPU s per minute per 1,000 idle subscribers | idle db tx/s, no subscriber | 1 subscriber | 1 + N subscribers |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.idle.map(
      (idle) =>
        `| ${idle.transport} | ${idle.subscribers} | ${num(idle.rssBeforeBytes / 2 ** 20, 1)} | ${num(idle.rssAfterBytes / 2 ** 20, 1)} | ${num(idle.rssPer1000Bytes / 1024)} | ${num(idle.cpuPer1000PerMinute, 3)} | ${num(idle.idleTxPerSecNoSubscribers, 1)} | ${num(idle.idleTxPerSecOneSubscriber, 1)} | ${num(idle.idleTxPerSecWithSubscribers, 1)} |`,
    ),
  ].join('\n');
}

function renderFull(results: BenchResults): string {
  return [
    '| transport | subscribers | p50 ms | p99 ms | events/s | deliveries/s | lost | duplicated | db tx/s | db tx per 1,000 events | peak db connections |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.runs
      .filter((run) => run.workload === 'full')
      .map(
        (run) =>
          `| ${run.transport} | ${run.subscribers} | ${ms(run.latencyMs.p50)} | ${ms(run.latencyMs.p99)} | ${num(run.eventsPerSec)} | ${num(run.deliveriesPerSec)} | ${lostCell(run)} | ${num(run.dbTxPerSec)} | ${num(run.dbTxPer1000Events)} | ${run.peakConnections ?? 'n/a'} |`,
      ),
  ].join('\n');
}

/** Where the CPU of a run's window went, for a throughput miss: the busiest process group and the machine's load. */
function cpuLimit(results: BenchResults, run: RunResult): string {
  const cpu = run.cpuSeconds;
  if (!cpu) return 'no CPU figures';
  const windowS = run.windowMs / 1000;
  const groups: Array<[string, number]> = [
    ['workers', cpu.workers],
    ['gateways', cpu.gateways],
    ['SSE clients (bench process)', cpu.clients],
  ];
  const total = groups.reduce((sum, [, seconds]) => sum + seconds, 0);
  const [name, seconds] = groups.sort((a, b) => b[1] - a[1])[0]!;
  const machine =
    run.machineBusy === undefined
      ? ''
      : `the machine's ${results.machine.cores} cores were ${num(run.machineBusy * 100)}% busy (everything running, PostgreSQL and Redis included); `;
  return `${machine}the measured processes used ${num(total / windowS, 2)} cores over the window; busiest: ${name} at ${num((seconds / windowS) * 100)}% of a core`;
}

/**
 * Whether this machine has the CPU for a target rate at the CPU an event cost
 * in this run: the whole machine's CPU per event (every process, PostgreSQL
 * and Redis included) and the SSE clients' alone, times the target rate,
 * against the cores there are.
 */
function capacityNote(results: BenchResults, run: RunResult, targetEventsPerSec: number): string {
  if (run.machineBusy === undefined || !run.cpuSeconds || run.events === 0) return '';
  const { cores } = results.machine;
  const machinePerEvent = (run.machineBusy * cores * (run.windowMs / 1000)) / run.events;
  const clientsPerEvent = run.cpuSeconds.clients / run.events;
  const need = (perEvent: number): string => num(perEvent * targetEventsPerSec, 2);
  return `; at the CPU an event cost in this run (${num(machinePerEvent * 1e6)} µs of machine CPU, all processes; ${num(clientsPerEvent * 1e6)} µs of it in the SSE clients for its ${num(run.deliveries / run.events, 0)} deliveries), ${num(targetEventsPerSec)} events/s would take ${need(machinePerEvent)} cores (the clients alone ${need(clientsPerEvent)}) of this machine's ${cores}`;
}

/**
 * What the bare durable round trip took while the paced run loaded the
 * machine, against the target: whether the target is below what the machine
 * gives one commit and notification at that load, or how much the pipeline
 * adds over it.
 */
function loadedFloorNote(floor: Quantiles, raw: RoundTrip, run: RunResult): string {
  const busy = run.machineBusy === undefined ? '' : ` (machine ${num(run.machineBusy * 100)}% busy)`;
  const sampled = `; sampled during this run${busy}, the bare durable round trip took p50 / p99 ${q(floor)} ms, ${num(floor.p99 / raw.p99, 1)}× the idle raw p99`;
  return floor.p99 >= raw.p99 * 10
    ? `${sampled}: the target is below what this machine gives one commit and notification at that load`
    : `${sampled}: the pipeline adds ${ms(run.latencyMs.p99 - floor.p99)} ms at p99 over it`;
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
    lines.push(
      `- **${ok ? 'MET' : 'MISSED'}** pipeline, ${run.subscribers} subscribers, ${transport} ≥ 2× BullMQ events/s at ≤ its p99, 0 lost / 0 duplicated: ${num(run.eventsPerSec)} vs ${num(bullMax.eventsPerSec)} events/s = ${num(ratio, 2)}×; p99 ${ms(run.latencyMs.p99)} vs ${ms(bullMax.latencyMs.p99)} ms; lost ${run.lost}, duplicated ${run.duplicated}` +
        (ok
          ? ''
          : `. Limit: ${cpuLimit(results, run)} (BullMQ: ${cpuLimit(results, bullMax)})${capacityNote(results, run, 2 * bullMax.eventsPerSec)}`),
    );
  }
  for (const transport of ['postgres', 'redis']) {
    const run = pipelineRun(results, transport, 'paced');
    const raw = rawFloorFor(results, transport);
    if (!run || !raw) continue;
    const ok = run.latencyMs.p99 <= raw.p99 * 10 && run.lost === 0 && run.duplicated === 0;
    const stage = results.stages.find((candidate) => candidate.transport === transport);
    const limit = stage ? limitingStage(stage) : undefined;
    const commit = results.rawFloor.pgCommitNotify;
    lines.push(
      `- **${ok ? 'MET' : 'MISSED'}** paced at ${results.options.rate} events/s (reached ${num(run.eventsPerSec)}), ${run.subscribers} subscribers, ${transport} p99 within 10× the raw round trip: p99 ${ms(run.latencyMs.p99)} ms vs 10 × ${ms(raw.p99)} = ${ms(raw.p99 * 10)} ms` +
        (ok || !limit ? '' : `. Limiting stage: ${limit.name}, +${ms(limit.ms)} ms at p99`) +
        (ok || !commit
          ? ''
          : `; append returned p50 / p99 ${q(stage?.appendReturned)} ms; this machine's durable commit floor (committed INSERT + pg_notify → LISTEN) is p50 ${ms(commit.p50)} / p99 ${ms(commit.p99)} ms idle, ${num(commit.p99 / raw.p99, 1)}× the raw round trip by itself`) +
        (ok || !stage?.loadedFloor ? '' : loadedFloorNote(stage.loadedFloor, raw, run)),
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
  const rawLine = (name: string, trip: RoundTrip | undefined) =>
    trip
      ? `| ${name} | ${ms(trip.p50)} | ${ms(trip.p99)} | ${ms(trip.max)} | ${trip.samples} |`
      : `| ${name} | n/a | n/a | n/a | 0 |`;
  const load = results.machine.loadAverage;
  return `# nodebatch benchmark results

Written by \`pnpm bench${o.quick ? ' --quick' : ''}\` (scripts/bench/main.ts) on ${results.startedAt}, in ${num(results.durationS)} s. Every figure below was measured in that run.

## Machine and versions
- ${results.machine.os}; ${results.machine.cores} × ${results.machine.cpus}; ${num(results.machine.memoryGiB, 1)} GiB memory; load average (1/5/15 min) at start ${load.map((value) => value.toFixed(2)).join(' / ')}, at end ${results.machine.loadAverageAtEnd.map((value) => value.toFixed(2)).join(' / ')}${(load[0] ?? 0) > 0.5 ? ' (other processes shared the cores during the run)' : ''}
- Node ${results.versions.node}; ${results.versions.postgres}; Redis ${results.versions.redis}; BullMQ ${results.versions.bullmq}${o.note ? `\n- Note: ${o.note}` : ''}

## Parameters
\`${JSON.stringify(o)}\`

- Every measured process runs built JavaScript with plain \`node\`: \`nodebatch gateway\` / \`nodebatch worker\` as \`node services/cli/dist/main.js\` (the bench builds first and refuses a stale dist), the producers and the BullMQ baseline as \`.mjs\` scripts (scripts/bench/pipeline). The SSE clients run in the bench process.
- **Pipeline runs** (nodebatch and BullMQ run the identical job body): ${o.workers} producer processes, each a BullMQ Worker taking ${o.tasks} jobs from a queue; a job reports N progress events (\`NodeProgress\` {node, done, total, 64-byte message}; BullMQ: an awaited \`job.updateProgress\` with the same fields) one after another, then the terminal event. nodebatch's job reports them the way \`nodebatch worker\` does, through the worker's event batcher (events pushed while an append is in flight share the next transaction; each transaction goes through the runtime's notifier, NOTIFY in it or PUBLISH after it; an event's time is its push time, so its wait in the batcher counts); the rows "one awaited append per event" show the same job with one transaction per event, awaited like updateProgress (the commit floor). BullMQ's ${o.gateways} gateway processes each hold one \`QueueEvents\`. **paced**: ${o.pacedEvents} events per job, one every ${pacedPauseMs(o)} ms on an absolute schedule (${o.rate} events/s over all jobs; the rate reached is measured); **max**: ${o.events} events per job, no pause. ${o.subscribers} SSE subscribers (subscriber i on job i mod ${o.tasks} through gateway i mod ${o.gateways}), all live before the jobs exist.
- **Full runs**: nodebatch's own worker (\`nodebatch worker\`) drains ${o.nodes} nodes per task, ${o.concurrency} at once, on the simulated cluster with zero latency; the simulated cluster's CPU (self time of packages/kube in the workers' CPU profiles, whose start-up and drain code it runs in) is shown on its own column.
- Latency: client arrival time minus the event's \`time\` (the append start, set by the producer; same machine clock), for every event after seq 1 at every subscriber. events/s: timed events ÷ (last delivery − first timed event's append); deliveries/s counts each subscriber's copy. Lost and duplicated: every seq 1..N+2 of every subscriber is accounted for.

## Raw floor (one at a time, send → arrival on the listening connection)
| round trip | p50 ms | p99 ms | max ms | samples |
| --- | ---: | ---: | ---: | ---: |
${rawLine('pg_notify → LISTEN', raw.pgNotify)}
${rawLine('committed INSERT + pg_notify (one transaction, fsync) → LISTEN', raw.pgCommitNotify)}
${rawLine('Redis PUBLISH → SUBSCRIBE', raw.redisPublish)}

## Pipeline runs: nodebatch against BullMQ, identical job body (append → SSE client)
${renderPipelineTable(results)}

In the **max** runs the two job bodies meet back-pressure differently: BullMQ's job issues its next update only once the previous one returned, so each event is stamped after the backlog; nodebatch's job pushes every event at once and the batcher appends them 100 at a time, so an event's latency includes its wait behind the earlier batches. The paced runs, at the same schedule on both sides, compare latency like for like.

Latency distributions: [paced runs](latency-paced.svg), [max runs](latency-max.svg).

![latency distribution, paced runs](latency-paced.svg)

## Latency by stage (paced pipeline run)
Each stage is timed from the same start, the event's append start, by a different observer: the producer (append returned), a LISTEN / SUBSCRIBE connection of the bench process on the transport's channel (hint at a listener; events announced by reference are not timed), the gateways' own delivery-lag histogram read from /metrics before and after the run (socket write; quantiles interpolated inside their bucket, as Prometheus' histogram_quantile does, so to the bucket's precision), and the SSE clients. The largest p99 step points at the stage that limits a miss; differences of quantiles are indicative, not exact.

${renderStages(results)}

## Scale (postgres, pipeline max run; the same ${o.tasks} jobs of ${o.scaleEvents} events in every run, so deliveries grow with the subscribers)
${renderScale(results)}

## Idle subscribers
${renderIdle(results)}

## Full runs: nodebatch's worker on the simulated cluster (max rate)
${renderFull(results)}

## Where the CPU went (user + system time from /proc, during each run)
${renderCpu(results)}

## Targets (issue 15)
${renderTargets(results).join('\n')}
${results.errors.length > 0 ? `\n## Errors during the run\n${results.errors.map((error) => `- ${error.split('\n').join('\n  ')}`).join('\n')}\n` : ''}`;
}

import type { RunResult } from './measure.js';
import type { IdleResult } from './nodebatch-phase.js';
import type { BenchOptions } from './options.js';
import type { RoundTrip } from './raw-floor.js';

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
  pacedSimLatencyMs: number;
  rawFloor: { pgNotify?: RoundTrip; redisPublish?: RoundTrip };
  runs: RunResult[];
  idle: Array<{ transport: string } & IdleResult>;
  errors: string[];
}

const ms = (value: number | undefined): string =>
  value === undefined || Number.isNaN(value) ? 'n/a' : value < 10 ? value.toFixed(2) : value.toFixed(1);
const num = (value: number | undefined, digits = 0): string =>
  value === undefined || Number.isNaN(value)
    ? 'n/a'
    : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** The raw round trip a transport's latency is compared with (polling has none: its floor is the interval). */
function rawFloorFor(results: BenchResults, run: RunResult): RoundTrip | undefined {
  if (run.transport === 'postgres') return results.rawFloor.pgNotify;
  if (run.transport === 'redis' || run.transport === 'bullmq') return results.rawFloor.redisPublish;
  return undefined;
}

function bullmqFor(results: BenchResults, run: RunResult): RunResult | undefined {
  return results.runs.find((candidate) => candidate.transport === 'bullmq' && candidate.kind === run.kind);
}

export function renderTable(results: BenchResults): string {
  const header =
    '| transport | run | subscribers | p50 ms | p99 ms | max ms | events/s | deliveries/s | lost | duplicated | db tx/s | db tx per 1,000 events | peak db connections | p99 ÷ raw p99 | events/s ÷ BullMQ | p99 ÷ BullMQ p99 |\n' +
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const rows = results.runs.map((run) => {
    const raw = rawFloorFor(results, run);
    const bull = run.transport === 'bullmq' ? undefined : bullmqFor(results, run);
    const rawRatio =
      run.transport === 'polling'
        ? `p99 − interval = ${ms(run.latencyMs.p99 - results.options.pollIntervalMs)} ms`
        : raw
          ? `${num(run.latencyMs.p99 / raw.p99, 1)}×`
          : 'n/a';
    return `| ${run.transport} | ${run.kind}${run.kind === 'paced' ? ` (${run.paceMs} ms)` : ''} | ${run.subscribers} | ${ms(run.latencyMs.p50)} | ${ms(run.latencyMs.p99)} | ${ms(run.latencyMs.max)} | ${num(run.eventsPerSec)} | ${num(run.deliveriesPerSec)} | ${run.lost} | ${run.duplicated}${run.incomplete ? ` (${run.incomplete} incomplete)` : ''} | ${num(run.dbTxPerSec)} | ${num(run.dbTxPer1000Events)} | ${run.peakConnections ?? 'n/a'} | ${rawRatio} | ${bull ? `${num(run.eventsPerSec / bull.eventsPerSec, 2)}×` : '—'} | ${bull ? `${num(run.latencyMs.p99 / bull.latencyMs.p99, 2)}×` : '—'} |`;
  });
  return [header, ...rows].join('\n');
}

function renderCpu(results: BenchResults): string {
  const rows = results.runs
    .filter((run) => run.cpuSeconds)
    .map((run) => {
      const cpu = run.cpuSeconds!;
      const per1000 = (seconds: number) => num((seconds / run.events) * 1000, 3);
      const busy = (seconds: number) => num((seconds / (run.windowMs / 1000)) * 100);
      return `| ${run.transport} | ${run.kind} | ${run.subscribers} | ${num(cpu.workers, 1)} (${busy(cpu.workers)}%) | ${num(cpu.gateways, 1)} (${busy(cpu.gateways)}%) | ${num(cpu.clients, 1)} (${busy(cpu.clients)}%) | ${per1000(cpu.workers)} | ${per1000(cpu.gateways)} | ${per1000(cpu.clients)} |`;
    });
  return [
    '| transport | run | subscribers | workers CPU s (% of one core over the window) | gateways CPU s | SSE clients CPU s | workers CPU s per 1,000 events | gateways | clients |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

function renderIdle(results: BenchResults): string {
  if (results.idle.length === 0) return '';
  const rows = results.idle.map(
    (idle) =>
      `| ${idle.transport} | ${idle.subscribers} | ${num(idle.rssBeforeBytes / 2 ** 20, 1)} | ${num(idle.rssAfterBytes / 2 ** 20, 1)} | ${num(idle.rssPer1000Bytes / 1024)} | ${num(idle.rssPer1000Bytes / 1000 / 1024, 2)} | ${num(idle.idleTxPerSecNoSubscribers, 1)} | ${num(idle.idleTxPerSecOneSubscriber, 1)} | ${num(idle.idleTxPerSecWithSubscribers, 1)} |`,
  );
  return [
    '| transport | N idle SSE subscribers (gateway 1) | gateway RSS before, MiB | after, MiB | KiB per 1,000 subscribers | KiB per subscriber | idle db tx/s, no subscriber | 1 subscriber | 1 + N subscribers |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

/** One line per issue-8 target, each with the measured figures it rests on. */
export function renderTargets(results: BenchResults): string[] {
  const lines: string[] = [];
  const runs = results.runs;
  for (const run of runs.filter(
    (candidate) => candidate.transport === 'postgres' || candidate.transport === 'redis',
  )) {
    const raw = rawFloorFor(results, run);
    if (!raw) continue;
    const ratio = run.latencyMs.p99 / raw.p99;
    lines.push(
      `- p99 within 3× raw (${run.transport}, ${run.kind}): p99 ${ms(run.latencyMs.p99)} ms vs raw p99 ${ms(raw.p99)} ms = ${num(ratio, 1)}× → ${ratio <= 3 ? 'met' : 'MISSED'}`,
    );
  }
  for (const run of runs.filter((candidate) => candidate.transport === 'polling')) {
    const limit = results.options.pollIntervalMs + 25;
    lines.push(
      `- polling p99 within interval + 25 ms (${run.kind}, ${run.subscribers} subscribers): p99 ${ms(run.latencyMs.p99)} ms vs ${limit} ms → ${run.latencyMs.p99 <= limit ? 'met' : 'MISSED'}`,
    );
  }
  const pgMax = runs.find((run) => run.transport === 'postgres' && run.kind === 'max');
  if (pgMax) {
    const ok =
      pgMax.eventsPerSec >= 20_000 && pgMax.lost === 0 && pgMax.duplicated === 0 && pgMax.incomplete === 0;
    lines.push(
      `- ≥ 20,000 events/s through postgres with 0 lost / 0 duplicated: ${num(pgMax.eventsPerSec)} events/s (${num(pgMax.deliveriesPerSec)} deliveries/s to ${pgMax.subscribers} subscribers), lost ${pgMax.lost}, duplicated ${pgMax.duplicated} → ${ok ? 'met' : 'MISSED'}`,
    );
  }
  for (const run of runs.filter(
    (candidate) => candidate.transport !== 'bullmq' && candidate.kind === 'max',
  )) {
    const bull = bullmqFor(results, run);
    if (!bull) continue;
    const ratio = run.eventsPerSec / bull.eventsPerSec;
    const ok = ratio >= 2 && run.latencyMs.p99 <= bull.latencyMs.p99;
    lines.push(
      `- ≥ 2× BullMQ throughput at ≤ its p99 (${run.transport}, ${run.subscribers} subscribers): ${num(ratio, 2)}× (${num(run.eventsPerSec)} vs ${num(bull.eventsPerSec)} events/s), p99 ${ms(run.latencyMs.p99)} vs ${ms(bull.latencyMs.p99)} ms → ${ok ? 'met' : 'MISSED'}`,
    );
  }
  const pollingRuns = runs.filter(
    (run) =>
      run.transport === 'polling' &&
      run.kind === runs.find((r) => r.transport === 'polling' && r.subscribers !== run.subscribers)?.kind,
  );
  if (pollingRuns.length >= 2) {
    lines.push(
      `- polling db load independent of subscribers (same workload): ${pollingRuns.map((run) => `${num(run.dbTxPer1000Events)} tx per 1,000 events / ${num(run.dbTxPerSec)} tx/s with ${run.subscribers} subscribers`).join('; ')}`,
    );
  }
  const pollingIdle = results.idle.find((idle) => idle.transport === 'polling');
  if (pollingIdle) {
    lines.push(
      `- polling idle db load (gateway 1 holds every subscriber): ${num(pollingIdle.idleTxPerSecNoSubscribers, 1)} tx/s with no subscriber, ${num(pollingIdle.idleTxPerSecOneSubscriber, 1)} with 1, ${num(pollingIdle.idleTxPerSecWithSubscribers, 1)} with ${pollingIdle.subscribers + 1} idle subscribers → ${pollingIdle.idleTxPerSecWithSubscribers <= pollingIdle.idleTxPerSecOneSubscriber * 1.25 + 0.5 ? 'independent' : 'GROWS with subscribers'}`,
    );
  }
  for (const idle of results.idle) {
    const perSubscriberKiB = idle.rssPer1000Bytes / 1000 / 1024;
    lines.push(
      `- ≤ 10 KB gateway memory per idle SSE subscriber (${idle.transport}): ${num(perSubscriberKiB, 2)} KiB → ${idle.rssPer1000Bytes / 1000 <= 10_000 ? 'met' : 'MISSED'}`,
    );
  }
  return lines;
}

export function renderMarkdown(results: BenchResults): string {
  const o = results.options;
  const raw = results.rawFloor;
  const rawLine = (name: string, trip: RoundTrip | undefined) =>
    trip
      ? `| ${name} | ${ms(trip.p50)} | ${ms(trip.p99)} | ${ms(trip.max)} | ${trip.samples} |`
      : `| ${name} | n/a | n/a | n/a | 0 |`;
  return `# nodebatch benchmark results

Written by \`pnpm bench\` (scripts/bench/main.ts) on ${results.startedAt}, in ${num(results.durationS)} s. Every figure below was measured in that run.

## Machine and versions
- ${results.machine.os}; ${results.machine.cores} × ${results.machine.cpus}; ${num(results.machine.memoryGiB, 1)} GiB memory; load average (1/5/15 min) at start ${results.machine.loadAverage.map((value) => value.toFixed(2)).join(' / ')}, at end ${results.machine.loadAverageAtEnd.map((value) => value.toFixed(2)).join(' / ')} (other processes on the machine share the 2 cores)
- Node ${results.versions.node}; ${results.versions.postgres}; Redis ${results.versions.redis}; BullMQ ${results.versions.bullmq}

## Parameters
\`${JSON.stringify(o)}\`

- Each transport runs in a fresh database with its own queue: ${o.gateways} gateway processes (\`nodebatch gateway\`) and, per run, ${o.workers} worker processes (\`nodebatch worker\`) on the simulated cluster. ${o.tasks} drain batches of ${o.concurrency} nodes at once; ${o.subscribers} SSE subscribers (subscriber i on task i mod ${o.tasks} through gateway i mod ${o.gateways}), all live before the workers start. The SSE clients run in the bench process (one Node process for all of them).
- **paced** runs drain ${o.pacedNodes} nodes per task with a simulated cluster latency of ${results.pacedSimLatencyMs} ms per operation (aiming at ${o.rate} events/s; the rate reached is measured); **max** runs drain ${o.nodes} nodes per task with zero latency (as fast as the workers go).
- Latency: client arrival time minus the event's \`time\` (set by the appending worker, same machine clock), for every event after TaskCreated at every subscriber. events/s: timed events ÷ (last delivery − first timed event's append); deliveries/s counts each subscriber's copy.
- db tx/s: \`pg_stat_database.xact_commit\` delta of the bench database from just before the workers start to 1.5 s after the last delivery (counters flush up to a second late; the count includes the workers' few start-up transactions), ÷ the active window (first timed event's append to last delivery). db tx per 1,000 events is the same count ÷ timed events. Peak connections: highest \`pg_stat_activity\` count for the database, sampled every 250 ms.
- BullMQ: ${o.workers} processes run a BullMQ Worker whose job calls \`job.updateProgress({seq, time})\` for each event, one after another; ${o.gateways} processes each hold one \`QueueEvents\` and fan 'progress' out to their SSE subscribers; same jobs, subscribers and events per job as the nodebatch max run (paced: a pause between updates aiming at the same rate). Default event stream length (10,000).

## Raw floor (one at a time, send → arrival on the listening connection)
| round trip | p50 ms | p99 ms | max ms | samples |
| --- | ---: | ---: | ---: | ---: |
${rawLine('pg_notify → LISTEN', raw.pgNotify)}
${rawLine('Redis PUBLISH → SUBSCRIBE', raw.redisPublish)}

## End to end (append → SSE client)
${renderTable(results)}

## Where the CPU went (user + system time from /proc, during each run)
${renderCpu(results)}

## Idle subscribers
${renderIdle(results)}

## Targets (issue 8)
${renderTargets(results).join('\n')}
${results.errors.length > 0 ? `\n## Errors during the run\n${results.errors.map((error) => `- ${error.split('\n').join('\n  ')}`).join('\n')}\n` : ''}`;
}

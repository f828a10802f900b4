import { lostUpTo, type GroupReport } from './sse-clients.js';
import type { ServerCpu } from './children.js';

/** Where each run's latency distribution is sampled: every percent, then the tail. */
export const CDF_QUANTILES: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => (i + 1) / 100),
  0.995,
  0.999,
  1,
];

/** The figures of one loaded run (one transport or the BullMQ path, one workload). */
export interface RunResult {
  /** 'postgres' | 'redis' | 'polling' | 'bullmq'. */
  transport: string;
  /** 'paced' (fixed rate) or 'max' (as fast as possible). */
  kind: 'paced' | 'max';
  /**
   * 'pipeline': the identical job body on both sides (N progress events per
   * job, no cluster work); 'full': nodebatch's worker draining the simulated cluster.
   */
  workload: 'pipeline' | 'full';
  /** nodebatch pipeline runs: events through the worker's batcher, or one awaited append each. */
  append?: 'batched' | 'each';
  subscribers: number;
  /** Gateway processes the subscribers were spread over. */
  gateways: number;
  tasks: number;
  /** Events appended after the subscribers were connected (the timed ones), over all tasks. */
  events: number;
  /** Timed deliveries over all subscribers. */
  deliveries: number;
  /** From the first timed event's append to the last subscriber's last delivery. */
  windowMs: number;
  eventsPerSec: number;
  deliveriesPerSec: number;
  /**
   * Pipeline runs: events/s the jobs got through their reporting call
   * (nodebatch: appended; BullMQ: updateProgress returned), first event made
   * to last reported.
   */
  reportedPerSec?: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Latency at each of CDF_QUANTILES, ms: the run's distribution (the SVG chart's curve). */
  cdfMs: number[];
  lost: number;
  duplicated: number;
  reconnects: number;
  /** Subscribers that never got their terminal event before the time limit. */
  incomplete: number;
  /** pg_stat_database xact_commit delta over the load (undefined for the BullMQ path, which uses no database). */
  dbCommits?: number;
  dbTxPerSec?: number;
  dbTxPer1000Events?: number;
  peakConnections?: number;
  /**
   * CPU seconds used during the run by all gateway processes, all worker
   * processes (from their ready line) and the SSE client processes: where
   * the time goes when a target is missed.
   */
  cpuSeconds?: {
    gateways: number;
    workers: number;
    clients: number;
    /** Of `workers`: the simulated cluster's self time in the workers' CPU profiles, whole process life (full runs only). */
    simulator?: number;
  };
  /**
   * CPU seconds of the PostgreSQL and Redis servers during the run (every
   * process of each on the machine): the part of the machine's CPU that no
   * measured process accounts for.
   */
  serverCpuSeconds?: ServerCpu;
  /**
   * Share of the whole machine's CPU (all cores) busy during the run, from
   * /proc/stat: the measured processes, PostgreSQL, Redis and anything else
   * running. Near 1, the run was bound by this machine's CPU.
   */
  machineBusy?: number;
  /**
   * Share of the run's wall time in which at least one runnable task waited
   * for a core (/proc/pressure/cpu "some"); absent without PSI.
   */
  cpuPressure?: number;
  /** Simulated cluster latency (nodebatch) or pause between updateProgress calls (BullMQ), ms. */
  paceMs: number;
  /** A paced run at the rate another run reached ('bullmq-max': the BullMQ baseline's max run). */
  atRateOf?: 'bullmq-max';
}

/** Delivery figures of a finished run. */
export function summarize(
  group: GroupReport,
  timedEvents: number,
  /** The last seq subscriber i should have received (its stream's terminal seq). */
  expectedLastSeq: (index: number) => number,
): Pick<
  RunResult,
  | 'events'
  | 'deliveries'
  | 'windowMs'
  | 'eventsPerSec'
  | 'deliveriesPerSec'
  | 'latencyMs'
  | 'cdfMs'
  | 'lost'
  | 'duplicated'
  | 'reconnects'
  | 'incomplete'
> {
  const { subscribers, latency } = group;
  const lastArrival = Math.max(...subscribers.map((subscriber) => subscriber.lastArrival));
  const windowMs = lastArrival - group.firstEventTime;
  const { p50, p99, max } = latency.summary();
  return {
    events: timedEvents,
    deliveries: latency.count,
    windowMs,
    eventsPerSec: timedEvents / (windowMs / 1000),
    deliveriesPerSec: latency.count / (windowMs / 1000),
    latencyMs: { p50, p99, max },
    cdfMs: latency.quantiles(CDF_QUANTILES),
    lost: subscribers.reduce((sum, subscriber, i) => sum + lostUpTo(subscriber, expectedLastSeq(i)), 0),
    duplicated: subscribers.reduce((sum, subscriber) => sum + subscriber.duplicated, 0),
    reconnects: subscribers.reduce((sum, subscriber) => sum + subscriber.reconnects, 0),
    incomplete: subscribers.filter((subscriber) => subscriber.terminalSeq === 0).length,
  };
}

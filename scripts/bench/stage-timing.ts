/**
 * Where an event's time goes, stage by stage, for one pipeline run: each
 * stage is timed from the same start (the event's append start, its `time`)
 * by a different observer, so that a missed target points at a stage.
 *   append returned: the producer itself (the wait in the batcher, the commit, and for redis the PUBLISH after it);
 *   hint at a listener: a LISTEN / SUBSCRIBE connection on the transport's channel, in a process of its own;
 *   gateway socket write: the gateways' own delivery-lag histogram (/metrics), read before and after;
 *   client arrival: the SSE subscribers, in processes of their own.
 */
import { fileURLToPath } from 'node:url';
import type { BenchChild, ChildSet } from './children.js';
import { LatencyRecorder } from './latency-recorder.js';
import { ObserverChannel } from './observer-channel.js';

const HINT_LISTENER = fileURLToPath(new URL('./pipeline/hint-listener.mjs', import.meta.url));

export interface Quantiles {
  p50: number;
  p99: number;
  count: number;
}

/** One pipeline run's stages, each in ms from the append start. */
export interface StageBreakdown {
  transport: string;
  /** The run: 'paced' (fixed rate) or 'max' (as fast as possible). */
  kind: 'paced' | 'max';
  appendReturned?: Quantiles;
  hintAtListener?: Quantiles;
  /** From the gateways' histogram: interpolated inside the bucket that holds the quantile. */
  gatewayWrite?: Quantiles;
  clientArrival: Quantiles;
  /** The durable commit + notification round trip, sampled during the run by pipeline/loaded-floor.mjs. */
  loadedFloor?: Quantiles;
  /**
   * The observers' own lag during the run: the event-loop delay of the hint
   * listener's process, and of the SSE client process with the largest p99.
   * What each of them times includes its own delay.
   */
  listenerDelay?: Quantiles;
  clientDelay?: Quantiles;
  /** The gateways' own event-loop delay over the run (the one with the largest p99). */
  gatewayDelay?: Quantiles;
}

export function quantiles(samples: readonly number[] | Float64Array): Quantiles | undefined {
  if (samples.length === 0) return undefined;
  const recorder = new LatencyRecorder();
  for (const sample of samples) recorder.add(sample);
  const { p50, p99, count } = recorder.summary();
  return { p50, p99, count };
}

/**
 * The "hint at a listener" observer: pipeline/hint-listener.mjs, a process of
 * its own with one LISTEN / SUBSCRIBE connection on the transport's channel,
 * like a gateway's. For each notification of a followed task that carries its
 * events inline it records the arrival time minus the last event's append time.
 */
export class HintListener {
  readonly #channel: ObserverChannel;

  private constructor(
    /** Its process, for the caller to stop with the phase's other children. */
    readonly child: BenchChild,
  ) {
    this.#channel = new ObserverChannel(child);
  }

  static async start(
    children: ChildSet,
    name: string,
    transport: 'postgres' | 'redis',
    urls: { databaseUrl: string; redisUrl: string },
    timeoutMs: number,
  ): Promise<HintListener> {
    const child = children.spawn(
      name,
      [HINT_LISTENER],
      { BENCH_HINT_TRANSPORT: transport, DATABASE_URL: urls.databaseUrl, REDIS_URL: urls.redisUrl },
      true,
    );
    await child.waitForLine('ready', timeoutMs);
    return new HintListener(child);
  }

  /** Only notifications of these tasks count from now on (the channel may carry others); earlier samples are dropped. */
  async follow(taskIds: readonly string[], timeoutMs: number): Promise<void> {
    this.#channel.send({ type: 'follow', taskIds: [...taskIds] });
    await this.#channel.receive(['following'], undefined, timeoutMs);
  }

  /** The samples since `follow`, and the listener process's event-loop delay over the same time. */
  async report(timeoutMs: number): Promise<{ samples: Float64Array; delay?: Quantiles }> {
    this.#channel.send({ type: 'report' });
    const reply = await this.#channel.receive(['report'], undefined, timeoutMs);
    return {
      samples: reply.samples as Float64Array,
      ...(reply.delay !== undefined && { delay: reply.delay as Quantiles }),
    };
  }
}

/** Cumulative bucket counts of the gateways' delivery-lag histogram, by upper bound in seconds. */
export type LagBuckets = Map<number, number>;

/** What the bench reads from the gateways' /metrics around a run. */
interface GatewayReading {
  lag: LagBuckets;
  /**
   * Event-loop delay of the gateway with the largest p99, in ms (prom-client's
   * default metrics; reset by every scrape, so a reading after the run covers
   * the time since the one before it). `count` is the number of gateways read.
   */
  loopDelay: Quantiles | undefined;
}

const BUCKET_LINE =
  /^nodebatch_gateway_delivery_lag_seconds_bucket\{([^}]*)\} (\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/;
const LOOP_DELAY_LINE = /^nodejs_eventloop_lag_(p50|p99)_seconds(?:\{[^}]*\})? (\S+)$/;

/** Reads and sums the SSE delivery-lag buckets of the gateways' /metrics, and their event-loop delays. */
export async function readGatewayMetrics(gatewayUrls: readonly string[]): Promise<GatewayReading> {
  const lag: LagBuckets = new Map();
  let loopDelay: Quantiles | undefined;
  for (const url of gatewayUrls) {
    const response = await fetch(`${url}/metrics`);
    if (!response.ok) throw new Error(`GET ${url}/metrics: HTTP ${response.status}`);
    const delay = { p50: NaN, p99: NaN };
    for (const line of (await response.text()).split('\n')) {
      const loop = LOOP_DELAY_LINE.exec(line);
      if (loop) {
        delay[loop[1] as 'p50' | 'p99'] = Number(loop[2]) * 1000;
        continue;
      }
      const match = BUCKET_LINE.exec(line);
      if (!match || !match[1]!.includes('kind="sse"')) continue;
      const le = /le="([^"]+)"/.exec(match[1]!)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      lag.set(bound, (lag.get(bound) ?? 0) + Number(match[2]));
    }
    if (Number.isFinite(delay.p99) && (!loopDelay || delay.p99 > loopDelay.p99))
      loopDelay = { p50: delay.p50, p99: delay.p99, count: gatewayUrls.length };
  }
  return { lag, loopDelay };
}

/**
 * Quantiles (ms) of the deliveries between two readings, interpolated
 * linearly inside the bucket that holds them, as Prometheus'
 * histogram_quantile does.
 */
export function lagQuantiles(before: LagBuckets, after: LagBuckets): Quantiles | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const cumulative = bounds.map((bound) => (after.get(bound) ?? 0) - (before.get(bound) ?? 0));
  const count = cumulative[cumulative.length - 1] ?? 0;
  if (count === 0) return undefined;
  const at = (q: number): number => {
    const rank = q * count;
    const index = cumulative.findIndex((value) => value >= rank);
    const upper = bounds[index]!;
    const lower = index > 0 ? bounds[index - 1]! : 0;
    if (!Number.isFinite(upper)) return lower * 1000; // beyond the last bound: its lower edge
    const below = index > 0 ? cumulative[index - 1]! : 0;
    const inBucket = cumulative[index]! - below;
    const share = inBucket > 0 ? (rank - below) / inBucket : 1;
    return (lower + (upper - lower) * share) * 1000;
  };
  return { p50: at(0.5), p99: at(0.99), count };
}

/**
 * Where an event's time goes, stage by stage, for one pipeline run: each
 * stage is timed from the same start (the event's append start, its `time`)
 * by a different observer, so that a missed target points at a stage.
 *   append returned: the producer itself (commit, and for redis the PUBLISH after it);
 *   hint at a listener: a LISTEN / SUBSCRIBE connection of the bench process on the transport's channel;
 *   gateway socket write: the gateways' own delivery-lag histogram (/metrics), read before and after;
 *   client arrival: the SSE subscribers.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { LatencyRecorder } from './sse-subscriber.js';

const wallNow = (): number => performance.timeOrigin + performance.now();

export interface Quantiles {
  p50: number;
  p99: number;
  count: number;
}

/** One transport's stages, each in ms from the append start. */
export interface StageBreakdown {
  transport: string;
  appendReturned?: Quantiles;
  hintAtListener?: Quantiles;
  /** From the gateways' histogram: interpolated inside the bucket that holds the quantile. */
  gatewayWrite?: Quantiles;
  clientArrival: Quantiles;
  /** The durable commit + notification round trip, sampled during the run by pipeline/loaded-floor.mjs. */
  loadedFloor?: Quantiles;
  /**
   * Event-loop delay of the bench process during the run: the hint listener
   * and the SSE clients live there, so what they time includes it.
   */
  observerDelay?: Quantiles;
}

export function quantiles(samples: readonly number[]): Quantiles | undefined {
  if (samples.length === 0) return undefined;
  const recorder = new LatencyRecorder();
  for (const sample of samples) recorder.add(sample);
  const { p50, p99, count } = recorder.summary();
  return { p50, p99, count };
}

/** The default channels of the transports (packages/runtime createRuntime). */
const PG_CHANNEL = 'nodebatch_progress';
const REDIS_CHANNEL = 'nodebatch:progress';

/**
 * Listens on the transport's channel like a gateway does and records, for
 * each notification of one of `taskIds` that carries its events inline, the
 * arrival time minus the last event's append time.
 */
export class HintListener {
  readonly #samples: number[] = [];
  readonly #taskIds = new Set<string>();
  #close: () => Promise<void> = async () => undefined;

  private constructor() {}

  static async start(transport: string, databaseUrl: string, redisUrl: string): Promise<HintListener> {
    const listener = new HintListener();
    const onMessage = (payload: string): void => listener.#record(payload);
    if (transport === 'postgres') {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      client.on('notification', (message) => onMessage(message.payload ?? ''));
      await client.query(`LISTEN ${PG_CHANNEL}`);
      listener.#close = () => client.end();
    } else if (transport === 'redis') {
      const client = new Redis(redisUrl, { lazyConnect: true });
      await client.connect();
      client.on('message', (_channel: string, message: string) => onMessage(message));
      await client.subscribe(REDIS_CHANNEL);
      listener.#close = async () => client.disconnect();
    }
    return listener;
  }

  /** Only notifications of these tasks count (the channel may carry others). */
  follow(taskIds: readonly string[]): void {
    this.#samples.length = 0;
    this.#taskIds.clear();
    for (const id of taskIds) this.#taskIds.add(id);
  }

  get samples(): readonly number[] {
    return this.#samples;
  }

  async close(): Promise<void> {
    await this.#close();
  }

  #record(payload: string): void {
    const arrival = wallNow();
    let message: { taskId?: unknown; events?: Array<{ time?: unknown }> };
    try {
      message = JSON.parse(payload) as typeof message;
    } catch {
      return;
    }
    if (typeof message.taskId !== 'string' || !this.#taskIds.has(message.taskId)) return;
    const last = message.events?.[message.events.length - 1];
    if (typeof last?.time !== 'string') return; // sent by reference: nothing to time
    this.#samples.push(arrival - Date.parse(last.time));
  }
}

/** Cumulative bucket counts of the gateways' delivery-lag histogram, by upper bound in seconds. */
export type LagBuckets = Map<number, number>;

const BUCKET_LINE =
  /^nodebatch_gateway_delivery_lag_seconds_bucket\{([^}]*)\} (\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/;

/** Reads and sums the SSE delivery-lag buckets of the gateways' /metrics. */
export async function readLagBuckets(gatewayUrls: readonly string[]): Promise<LagBuckets> {
  const buckets: LagBuckets = new Map();
  for (const url of gatewayUrls) {
    const response = await fetch(`${url}/metrics`);
    if (!response.ok) throw new Error(`GET ${url}/metrics: HTTP ${response.status}`);
    for (const line of (await response.text()).split('\n')) {
      const match = BUCKET_LINE.exec(line);
      if (!match || !match[1]!.includes('kind="sse"')) continue;
      const le = /le="([^"]+)"/.exec(match[1]!)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + Number(match[2]));
    }
  }
  return buckets;
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

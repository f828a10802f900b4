/**
 * The bench's SSE clients live in processes of their own
 * (pipeline/sse-clients.mjs, plain node), not in the bench process: what they
 * time is then not delayed by the bench's own work, and their CPU is counted
 * on its own. A run's subscribers are split in contiguous slices over the
 * processes (so each process holds subscribers of every gateway and task);
 * at the end each process hands over its tallies and latency samples.
 */
import { fileURLToPath } from 'node:url';
import { readCpuSeconds, type ChildSet } from './children.js';
import { LatencyRecorder } from './latency-recorder.js';
import { ObserverChannel } from './observer-channel.js';
import type { Quantiles } from './stage-timing.js';

const SSE_CLIENTS = fileURLToPath(new URL('./pipeline/sse-clients.mjs', import.meta.url));

/** How a stream's messages read: nodebatch's stored events, or the BullMQ baseline's `{seq, time, terminal}`. */
export type StreamFormat = 'stored' | 'bullmq';

/** What one subscriber received. */
export interface SubscriberTally {
  /** seen[seq] is 1 once seq arrived (up to lastSeq). */
  seen: Uint8Array;
  duplicated: number;
  lastSeq: number;
  /** Seq of the terminal event; 0 if it never came. */
  terminalSeq: number;
  reconnects: number;
  /** Wall-clock ms of its last message. */
  lastArrival: number;
  /** Why its last reconnection failed, if it did. */
  error?: string;
}

/** Seqs 1..last that a subscriber never received. */
export function lostUpTo(tally: SubscriberTally, last: number): number {
  let missing = 0;
  for (let seq = 1; seq <= last; seq++) if (tally.seen[seq] !== 1) missing++;
  return missing;
}

/** Everything a group of subscribers measured, merged over the client processes. */
export interface GroupReport {
  /** In the order of the URLs the group was opened with. */
  subscribers: SubscriberTally[];
  /** Arrival minus append time of every delivery after seq 1 (timed groups only). */
  latency: LatencyRecorder;
  /** Append time of the earliest timed event, ms since the epoch. */
  firstEventTime: number;
  /** The event-loop delay, from live to done, of the client process with the largest p99 (if asked). */
  delay?: Quantiles;
}

interface WireReport {
  subscribers: SubscriberTally[];
  latencies: Float64Array;
  firstEventTime: number;
  delay?: Quantiles;
}

/** One group's share in one client process. */
interface Part {
  channel: ObserverChannel;
  group: number;
}

/** Subscribers opened together (one run's, or the idle ones) over the client processes. */
class SubscriberGroup {
  readonly #parts: Part[];

  constructor(parts: Part[]) {
    this.#parts = parts;
  }

  /** Resolves true when every subscriber got its terminal event, false after `timeoutMs` (counted as incomplete). */
  async awaitCompletion(timeoutMs: number): Promise<boolean> {
    try {
      await Promise.all(this.#parts.map(({ channel, group }) => channel.receive(['done'], group, timeoutMs)));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the subscribers and collects what they measured. */
  async report(timeoutMs: number): Promise<GroupReport> {
    const wires = await Promise.all(
      this.#parts.map(async ({ channel, group }) => {
        channel.send({ type: 'report', group });
        return (await channel.receive(['report'], group, timeoutMs)).report as WireReport;
      }),
    );
    const latency = new LatencyRecorder();
    for (const wire of wires) latency.addAll(wire.latencies);
    const delays = wires.flatMap((wire) => (wire.delay ? [wire.delay] : []));
    return {
      subscribers: wires.flatMap((wire) => wire.subscribers),
      latency,
      firstEventTime: Math.min(...wires.map((wire) => wire.firstEventTime)),
      ...(delays.length > 0 && { delay: delays.sort((a, b) => b.p99 - a.p99)[0] }),
    };
  }

  /** Closes the subscribers without a report. */
  close(): void {
    for (const { channel, group } of this.#parts) {
      try {
        channel.send({ type: 'close', group });
      } catch {
        // That process has exited: its subscribers went with it.
      }
    }
  }
}

export class SseClientPool {
  readonly #channels: ObserverChannel[];
  #nextGroup = 1;

  private constructor(channels: ObserverChannel[]) {
    this.#channels = channels;
  }

  /**
   * Starts `processes` client processes and waits until each takes commands.
   * `cpuProfile`: each writes a V8 CPU profile beside its log when it exits.
   */
  static async start(
    children: ChildSet,
    processes: number,
    timeoutMs: number,
    cpuProfile = false,
  ): Promise<SseClientPool> {
    const started = Array.from({ length: processes }, (_, i) => {
      const name = `sse-clients-${i + 1}`;
      return children.spawn(name, [...children.profileArgs(name, cpuProfile), SSE_CLIENTS], {}, true);
    });
    await Promise.all(started.map((child) => child.waitForLine('ready', timeoutMs)));
    return new SseClientPool(started.map((child) => new ObserverChannel(child)));
  }

  /**
   * Opens one subscriber per URL and resolves once each received its first
   * message (so that all are live before any producer starts). `timed`:
   * record every delivery's latency; `monitorDelay`: sample the processes'
   * event-loop delay from then until the terminal events.
   */
  async open(
    urls: readonly string[],
    options: { format: StreamFormat; timed: boolean; monitorDelay?: boolean },
    timeoutMs: number,
  ): Promise<SubscriberGroup> {
    const size = Math.ceil(urls.length / this.#channels.length);
    const parts: Array<Part & { urls: string[] }> = [];
    this.#channels.forEach((channel, i) => {
      const slice = urls.slice(i * size, (i + 1) * size);
      if (slice.length > 0) parts.push({ channel, group: this.#nextGroup++, urls: slice });
    });
    const group = new SubscriberGroup(parts);
    const replies = await Promise.allSettled(
      parts.map(({ channel, group: id, urls: slice }) => {
        channel.send({
          type: 'open',
          group: id,
          urls: slice,
          format: options.format,
          timed: options.timed,
          monitorDelay: options.monitorDelay === true,
        });
        return channel.receive(['live', 'failed'], id, timeoutMs);
      }),
    );
    const failure = replies
      .map((reply): string | undefined =>
        reply.status === 'rejected'
          ? String(reply.reason instanceof Error ? reply.reason.message : reply.reason)
          : reply.value.type === 'failed'
            ? String(reply.value.message)
            : undefined,
      )
      .find((message) => message !== undefined);
    if (failure !== undefined) {
      group.close();
      throw new Error(`opening ${urls.length} SSE subscribers: ${failure}`);
    }
    return group;
  }

  /** CPU seconds the client processes have used so far. */
  cpuSeconds(): number {
    return this.#channels.reduce((sum, channel) => {
      try {
        return sum + readCpuSeconds(channel.pid);
      } catch {
        return sum; // exited
      }
    }, 0);
  }
}

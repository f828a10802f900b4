import { performance } from 'node:perf_hooks';
import { openEventStream, type EventStreamConnection } from '@nodebatch/client';
import { describeCauses } from '@nodebatch/progress';

/** Wall-clock now in ms with sub-ms precision (same clock as the producers' Date on this machine). */
const wallNow = (): number => performance.timeOrigin + performance.now();

/** Append-to-client latencies of every delivery, in ms, kept compactly. */
export class LatencyRecorder {
  #samples = new Float64Array(1 << 16);
  #length = 0;

  add(ms: number): void {
    if (this.#length === this.#samples.length) {
      const bigger = new Float64Array(this.#samples.length * 2);
      bigger.set(this.#samples);
      this.#samples = bigger;
    }
    this.#samples[this.#length++] = ms;
  }

  get count(): number {
    return this.#length;
  }

  summary(): { p50: number; p99: number; max: number; count: number } {
    const [p50, p99, max] = this.quantiles([0.5, 0.99, 1]) as [number, number, number];
    return { p50, p99, max, count: this.#length };
  }

  /** The sample at each quantile (1 = the largest); NaN without samples. */
  quantiles(qs: readonly number[]): number[] {
    const sorted = this.#samples.slice(0, this.#length).sort();
    return qs.map((q) =>
      q >= 1
        ? (sorted[sorted.length - 1] ?? NaN)
        : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN),
    );
  }
}

/** What one SSE message carries for the bench: the seq, the append time, whether it ends the stream. */
export interface SseMessage {
  seq: number;
  /** Append time, ms since the epoch. */
  time: number;
  terminal: boolean;
}

interface SubscriberOptions {
  /** Full URL of the stream, without the resume parameter. */
  url: string;
  parse(data: string): SseMessage;
  latency: LatencyRecorder | undefined;
  /** Seqs at or below this are not timed (read from the log before the producers started). */
  untimedUpTo: number;
  /** Called once the first message arrived. */
  onFirst?: () => void;
  /** Called when the terminal message arrived. */
  onDone?: () => void;
}

/**
 * One SSE subscriber that counts what it receives: every seq once (lost and
 * duplicated are counted against 1..last), latency from the event's append
 * time, and reconnects (resuming after the last seq, as EventSource does with
 * Last-Event-ID) when the server drops the stream before the terminal event.
 */
export class SseSubscriber {
  #seen = new Uint8Array(1024);
  received = 0;
  duplicated = 0;
  lastSeq = 0;
  /** Seq of the terminal event, once received. */
  terminalSeq = 0;
  reconnects = 0;
  firstArrival = 0;
  lastArrival = 0;
  error: string | undefined;
  #connection: EventStreamConnection | undefined;
  #closed = false;

  readonly #options: SubscriberOptions;

  constructor(options: SubscriberOptions) {
    this.#options = options;
  }

  get done(): boolean {
    return this.terminalSeq > 0;
  }

  /** Seqs 1..last never received (default last: the terminal seq, else the highest seen). */
  lostUpTo(last = this.terminalSeq || this.lastSeq): number {
    let missing = 0;
    for (let seq = 1; seq <= last; seq++) if (this.#seen[seq] !== 1) missing++;
    return missing;
  }

  /**
   * Resolves when the response headers arrived (the stream is open). One
   * connection of @nodebatch/client's openEventStream: the raw stream, neither
   * deduplicated nor resumed by the client, so what the gateway delivers is
   * what is counted; this class resumes after a drop itself.
   */
  async open(): Promise<void> {
    const url = new URL(this.#options.url);
    if (this.lastSeq > 0) url.searchParams.set('after', String(this.lastSeq));
    let connection: EventStreamConnection;
    try {
      connection = await openEventStream(url);
    } catch (err) {
      if (!this.#closed) this.error = describeCauses(err);
      throw err;
    }
    this.#connection = connection;
    void this.#read(connection);
  }

  close(): void {
    this.#closed = true;
    this.#connection?.close();
  }

  async #read(connection: EventStreamConnection): Promise<void> {
    try {
      for await (const message of connection.messages()) this.#onData(message.data);
    } catch {
      // A dropped connection: resumed below like any other end before the terminal event.
    }
    if (this.#closed || this.done) return;
    // Dropped before the end (e.g. the gateway shed a slow client): resume like EventSource.
    this.reconnects++;
    setTimeout(() => {
      if (!this.#closed) this.open().catch((err: unknown) => (this.error = describeCauses(err)));
    }, 50);
  }

  #onData(data: string): void {
    const message = this.#options.parse(data);
    const arrival = wallNow();
    if (this.firstArrival === 0) {
      this.firstArrival = arrival;
      this.#options.onFirst?.();
    }
    this.lastArrival = arrival;
    const { seq } = message;
    if (seq >= this.#seen.length) {
      const bigger = new Uint8Array(Math.max(seq + 1, this.#seen.length * 2));
      bigger.set(this.#seen);
      this.#seen = bigger;
    }
    if (this.#seen[seq] === 1) this.duplicated++;
    else {
      this.#seen[seq] = 1;
      this.received++;
    }
    if (seq > this.lastSeq) this.lastSeq = seq;
    if (seq > this.#options.untimedUpTo) this.#options.latency?.add(arrival - message.time);
    if (message.terminal && this.terminalSeq === 0) {
      this.terminalSeq = seq;
      this.#options.onDone?.();
    }
  }
}

/** Resolves when `check` holds, polling every 50 ms; rejects after `timeoutMs` with `describe()`. */
export async function waitUntil(
  check: () => boolean,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

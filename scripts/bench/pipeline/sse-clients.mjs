/**
 * The bench's SSE clients (bench only): a process of their own, so that the
 * arrival times they record are not delayed by the bench process's own work
 * (nor by a hint listener), and their CPU is counted apart. The bench starts
 * one or two of these (scripts/bench/sse-clients.ts) and drives them over the
 * IPC channel (advanced serialization); each holds groups of subscribers:
 *   {type: 'open', group, urls, format, timed, monitorDelay}: one subscriber per URL;
 *     → {type: 'live', group} once every one got its first message (read from the log as it subscribed),
 *     → {type: 'failed', group, message} if one could not connect;
 *     → {type: 'done', group} once every one got its terminal event;
 *   {type: 'report', group} → {type: 'report', group, report}: per subscriber the seqs it saw,
 *     duplicates, reconnects and last arrival; the timed latencies; the event-loop delay of this
 *     process from 'live' to 'done'. The group's subscribers are closed;
 *   {type: 'close', group}: closes them without a report (idle subscribers).
 * Prints {"ready": true} when it takes commands. Plain `node`, built output only.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { openEventStream } from '@nodebatch/client';
import { describeCauses, isTerminalType } from '@nodebatch/progress';

if (!process.send) throw new Error('sse-clients.mjs runs as a bench child with an IPC channel');
const send = process.send.bind(process);

/** Wall-clock now in ms with sub-ms precision (the producers stamp events with the same clock). */
const wallNow = () => performance.timeOrigin + performance.now();

/** How each stream's `data` reads: nodebatch's stored events, or the BullMQ baseline's messages. */
const PARSERS = {
  /** @param {string} data */
  stored: (data) => {
    const event = JSON.parse(data);
    return { seq: event.seq, time: Date.parse(event.time), terminal: isTerminalType(event.type) };
  },
  /** @param {string} data */
  bullmq: (data) => {
    const message = JSON.parse(data);
    return { seq: message.seq, time: message.time, terminal: message.terminal === true };
  },
};

/** Latencies in ms, kept compactly and handed over as one Float64Array. */
class Samples {
  #values = new Float64Array(1 << 14);
  #length = 0;

  /** @param {number} value */
  add(value) {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#length++] = value;
  }

  values() {
    return this.#values.slice(0, this.#length);
  }
}

/**
 * One SSE subscriber that counts what it receives: every seq once (lost and
 * duplicated are counted against 1..last by the bench), latency from the
 * event's append time, and reconnects (resuming after the last seq, as
 * EventSource does with Last-Event-ID) when the server drops the stream
 * before the terminal event.
 */
class SseSubscriber {
  seen = new Uint8Array(1024);
  duplicated = 0;
  lastSeq = 0;
  terminalSeq = 0;
  reconnects = 0;
  firstArrival = 0;
  lastArrival = 0;
  /** @type {string | undefined} */
  error;
  /** @type {import('@nodebatch/client').EventStreamConnection | undefined} */
  #connection;
  #closed = false;

  /**
   * @param {{url: string, parse: (data: string) => {seq: number, time: number, terminal: boolean},
   *   latency: Samples | undefined, onFirst: () => void, onDone: () => void}} options
   */
  constructor(options) {
    this.options = options;
  }

  /**
   * Resolves when the response headers arrived (the stream is open). One
   * connection of @nodebatch/client's openEventStream: the raw stream, neither
   * deduplicated nor resumed by the client, so what the gateway delivers is
   * what is counted; this class resumes after a drop itself.
   */
  async open() {
    const url = new URL(this.options.url);
    if (this.lastSeq > 0) url.searchParams.set('after', String(this.lastSeq));
    let connection;
    try {
      connection = await openEventStream(url);
    } catch (err) {
      if (!this.#closed) this.error = describeCauses(err);
      throw err;
    }
    this.#connection = connection;
    void this.#read(connection);
  }

  close() {
    this.#closed = true;
    this.#connection?.close();
  }

  /** @param {import('@nodebatch/client').EventStreamConnection} connection */
  async #read(connection) {
    try {
      for await (const message of connection.messages()) this.#onData(message.data);
    } catch {
      // A dropped connection: resumed below like any other end before the terminal event.
    }
    if (this.#closed || this.terminalSeq > 0) return;
    // Dropped before the end (e.g. the gateway shed a slow client): resume like EventSource.
    this.reconnects++;
    setTimeout(() => {
      if (!this.#closed) this.open().catch((err) => (this.error = describeCauses(err)));
    }, 50);
  }

  /** @param {string} data */
  #onData(data) {
    const message = this.options.parse(data);
    const arrival = wallNow();
    this.lastArrival = arrival;
    const { seq } = message;
    if (seq >= this.seen.length) {
      const bigger = new Uint8Array(Math.max(seq + 1, this.seen.length * 2));
      bigger.set(this.seen);
      this.seen = bigger;
    }
    if (this.seen[seq] === 1) this.duplicated++;
    else this.seen[seq] = 1;
    if (seq > this.lastSeq) this.lastSeq = seq;
    // Seq 1 was read from the log (or said "subscribed") before the producers started: not timed.
    if (seq > 1) this.options.latency?.add(arrival - message.time);
    if (this.firstArrival === 0) {
      this.firstArrival = arrival;
      this.options.onFirst();
    }
    if (message.terminal && this.terminalSeq === 0) {
      this.terminalSeq = seq;
      this.options.onDone();
    }
  }
}

/**
 * @typedef {{subscribers: SseSubscriber[], latency: Samples, firstEventTime: number, opened: boolean,
 *   first: number, finished: number, live: boolean, monitorDelay: boolean,
 *   delay: import('node:perf_hooks').IntervalHistogram | undefined}} Group
 */
/** @type {Map<number, Group>} */
const groups = new Map();

/** @param {{group: number, urls: string[], format: 'stored' | 'bullmq', timed: boolean, monitorDelay: boolean}} command */
async function open(command) {
  const parse = PARSERS[command.format];
  /** @type {Group} */
  const group = {
    subscribers: [],
    latency: new Samples(),
    firstEventTime: Infinity,
    opened: false,
    first: 0,
    finished: 0,
    live: false,
    monitorDelay: command.monitorDelay,
    delay: undefined,
  };
  groups.set(command.group, group);
  const goLive = () => {
    if (group.live || !group.opened || group.first < group.subscribers.length) return;
    group.live = true;
    if (group.monitorDelay) {
      group.delay = monitorEventLoopDelay({ resolution: 5 });
      group.delay.enable();
    }
    send({ type: 'live', group: command.group });
  };
  for (const url of command.urls) {
    group.subscribers.push(
      new SseSubscriber({
        url,
        parse: (data) => {
          const message = parse(data);
          if (message.seq > 1 && message.time < group.firstEventTime) group.firstEventTime = message.time;
          return message;
        },
        latency: command.timed ? group.latency : undefined,
        onFirst: () => {
          group.first++;
          goLive();
        },
        onDone: () => {
          if (++group.finished < group.subscribers.length) return;
          group.delay?.disable();
          send({ type: 'done', group: command.group });
        },
      }),
    );
  }
  try {
    // A few hundred at a time, so that the gateways are not asked for thousands of streams at once.
    for (let start = 0; start < group.subscribers.length; start += 200)
      await Promise.all(group.subscribers.slice(start, start + 200).map((subscriber) => subscriber.open()));
  } catch (err) {
    for (const subscriber of group.subscribers) subscriber.close();
    groups.delete(command.group);
    send({ type: 'failed', group: command.group, message: describeCauses(err) });
    return;
  }
  group.opened = true;
  goLive();
}

/** @param {number} id */
function report(id) {
  const group = groups.get(id);
  if (!group) throw new Error(`report of group ${id}: no such group`);
  groups.delete(id);
  group.delay?.disable();
  for (const subscriber of group.subscribers) subscriber.close();
  const { delay } = group;
  send({
    type: 'report',
    group: id,
    report: {
      subscribers: group.subscribers.map((subscriber) => ({
        seen: subscriber.seen.slice(0, subscriber.lastSeq + 1),
        duplicated: subscriber.duplicated,
        lastSeq: subscriber.lastSeq,
        terminalSeq: subscriber.terminalSeq,
        reconnects: subscriber.reconnects,
        lastArrival: subscriber.lastArrival,
        error: subscriber.error,
      })),
      latencies: group.latency.values(),
      firstEventTime: group.firstEventTime,
      delay:
        delay && delay.count > 0
          ? { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, count: delay.count }
          : undefined,
    },
  });
}

process.on('message', (/** @type {any} */ command) => {
  if (command.type === 'open') void open(command);
  else if (command.type === 'report') report(command.group);
  else if (command.type === 'close') {
    for (const subscriber of groups.get(command.group)?.subscribers ?? []) subscriber.close();
    groups.delete(command.group);
  } else throw new Error(`sse-clients: unknown command ${JSON.stringify(command)}`);
});
// The bench went away (or ended): nothing is left to report to.
process.on('disconnect', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

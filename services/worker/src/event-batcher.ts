import type { NewEvent, StoredEvent } from '@nodebatch/progress';

/** Appends events to one task and notifies: the notifier's `append`. */
export type AppendEvents = (
  taskId: string,
  events: readonly NewEvent[],
  options?: { expectedSeq?: number; fence?: number; idempotencyKey?: string },
) => Promise<StoredEvent[]>;

export interface EventBatcherOptions {
  taskId: string;
  append: AppendEvents;
  /**
   * How long an event that finds no append in flight waits for others to
   * share its transaction. Default 0: the end of the current turn (events
   * pushed together still go together). Events that find an append in flight
   * wait for it and share the next one whatever this is, which bounds a
   * task's transactions to one at a time.
   */
  flushDelayMs?: number;
  /** A batch this large is appended at once, without waiting. Default 100. */
  maxBatchEvents?: number;
}

/**
 * Collects a task's events and appends them in small batches, so a 1,000-node
 * batch is a few hundred transactions rather than 5,000. Each batch is one
 * append through the notifier, so every event is durable before anyone is
 * told about it; batches are appended one after another, in push order.
 *
 * A batch is cut only while no append is in flight: events pushed during an
 * append wait for it and then share the next transaction (group commit).
 * Cutting on a timer regardless queued one small append behind another
 * whenever appends took longer than the flush delay, and the queue, with
 * every event's latency, grew without bound.
 */
export interface EventBatcher {
  /** Queues events; throws the append error if an earlier batch failed (the task must stop). */
  push(...events: NewEvent[]): void;
  /** Appends everything pushed so far; rejects with the first append error. */
  flush(): Promise<void>;
  /** The first append error, once one happened. */
  readonly failure: unknown;
  /** The seq of the last event appended by this batcher (0 before the first append). */
  readonly lastSeq: number;
}

export function createEventBatcher(options: EventBatcherOptions): EventBatcher {
  const { taskId, append } = options;
  const flushDelayMs = options.flushDelayMs ?? 0;
  const maxBatchEvents = options.maxBatchEvents ?? 100;
  let pending: NewEvent[] = [];
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  let failure: unknown;
  let failed = false;
  let lastSeq = 0;
  /** The append in flight (it never rejects: its error goes to `failure`); undefined when idle. */
  let inFlight: Promise<void> | undefined;

  /** Starts an append of what is pending, unless one is in flight (its end starts the next). */
  const cut = (): void => {
    if (timer) {
      if (flushDelayMs > 0) clearTimeout(timer as NodeJS.Timeout);
      else clearImmediate(timer as NodeJS.Immediate);
      timer = undefined;
    }
    if (inFlight || failed || pending.length === 0) return;
    const batch = pending.length > maxBatchEvents ? pending.splice(0, maxBatchEvents) : pending;
    if (batch === pending) pending = [];
    inFlight = (async () => {
      try {
        const stored = await append(taskId, batch);
        lastSeq = stored.at(-1)?.seq ?? lastSeq;
      } catch (err) {
        failed = true;
        failure = err;
      } finally {
        inFlight = undefined;
      }
      // What arrived meanwhile has waited for a whole append already: it goes now, together.
      if (pending.length > 0) cut();
    })();
  };

  return {
    push(...events) {
      if (failed) throw failure;
      pending.push(...events);
      if (inFlight) return;
      if (pending.length >= maxBatchEvents) cut();
      else timer ??= flushDelayMs > 0 ? setTimeout(cut, flushDelayMs) : setImmediate(cut);
    },
    async flush() {
      for (;;) {
        if (failed) throw failure;
        if (!inFlight && pending.length === 0) return;
        cut();
        await inFlight;
      }
    },
    get failure() {
      return failure;
    },
    get lastSeq() {
      return lastSeq;
    },
  };
}

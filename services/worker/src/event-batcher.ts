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
  /** How long an event may wait for others to share its transaction. Default 5 ms. */
  flushDelayMs?: number;
  /** A batch this large is appended at once, without waiting. Default 100. */
  maxBatchEvents?: number;
}

/**
 * Collects a task's events and appends them in small batches, so a 1,000-node
 * batch is a few hundred transactions rather than 5,000. Each batch is one
 * append through the notifier, so every event is durable before anyone is
 * told about it; batches are appended one after another, in push order.
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
  const flushDelayMs = options.flushDelayMs ?? 5;
  const maxBatchEvents = options.maxBatchEvents ?? 100;
  let pending: NewEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let failure: unknown;
  let failed = false;
  let lastSeq = 0;
  // Appends run one at a time so the log keeps the order of push.
  let chain: Promise<void> = Promise.resolve();

  const appendPending = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending.length > 0 && !failed) {
      const batch = pending;
      pending = [];
      chain = chain.then(async () => {
        if (failed) return;
        try {
          const stored = await append(taskId, batch);
          lastSeq = stored.at(-1)?.seq ?? lastSeq;
        } catch (err) {
          failed = true;
          failure = err;
        }
      });
    }
    return chain.then(() => {
      if (failed) throw failure;
    });
  };

  return {
    push(...events) {
      if (failed) throw failure;
      pending.push(...events);
      if (pending.length >= maxBatchEvents) {
        // The error is kept in `failure` and surfaces on the next push or flush.
        appendPending().catch(() => undefined);
      } else if (!timer) {
        timer = setTimeout(() => appendPending().catch(() => undefined), flushDelayMs);
      }
    },
    flush: appendPending,
    get failure() {
      return failure;
    },
    get lastSeq() {
      return lastSeq;
    },
  };
}

import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { NodebatchError } from './errors.js';
import type { NewEvent, StoredEvent } from './events.js';
import { backoffDelay, describeError, isDatabaseUnavailable, sleep, type BackoffOptions } from './lib.js';
import type { AppendOptions } from './store.js';

/** An append function: EventStore.append, Notifier.append, or a wrapper of them. */
export type AppendFunction<O extends Pick<AppendOptions, 'idempotencyKey'>> = (
  taskId: string,
  events: readonly NewEvent[],
  options?: O,
) => Promise<StoredEvent[]>;

/** Options of {@link retryingAppend}. */
export interface AppendRetryOptions {
  /**
   * How long one append may keep retrying, in ms from its first try: a retry
   * whose delay would end past it is not made, and the last error is thrown
   * as AppendRetriesExhaustedError. Default 30000; 0 tries once.
   */
  budgetMs?: number;
  /** Delays between tries. Default 200 ms doubling up to 5 s, with jitter. */
  backoff?: BackoffOptions;
  /** Which failures are worth another try. Default {@link isDatabaseUnavailable}: not a refusal, not bad input. */
  isRetryable?: (err: unknown) => boolean;
  /** Says when an append starts retrying and when it got through. Default: silent. */
  logger?: Logger;
  /** Monotonic clock, ms. Default `performance.now()`. */
  now?: () => number;
  /** Aborting it ends a wait between tries with the signal's reason. */
  signal?: AbortSignal;
}

/** An append kept failing for as long as its retry budget allowed; nothing more will be tried. */
export class AppendRetriesExhaustedError extends NodebatchError {
  readonly taskId: string;
  readonly tries: number;

  constructor(taskId: string, tries: number, elapsedMs: number, options: { cause: unknown }) {
    super(
      'APPEND_RETRIES_EXHAUSTED',
      `task ${JSON.stringify(taskId)}: append failed ${tries} time(s) over ${Math.round(elapsedMs)} ms, the retry budget; last error: ${describeError(options.cause)}`,
      options,
    );
    this.taskId = taskId;
    this.tries = tries;
  }
}

const DEFAULT_BUDGET_MS = 30_000;
const DEFAULT_BACKOFF: BackoffOptions = { minDelayMs: 200, maxDelayMs: 5_000 };

/**
 * Wraps an append so that a short database outage does not fail it: a failed
 * try is retried with backoff while the failure says the database is away
 * and the budget lasts. Every try of one call carries the same idempotency
 * key (the caller's, else a new one), so a try whose commit went through but
 * whose acknowledgement was lost is answered from the log on the next try,
 * never written twice.
 */
export function retryingAppend<O extends Pick<AppendOptions, 'idempotencyKey'>>(
  append: AppendFunction<O>,
  options: AppendRetryOptions = {},
): AppendFunction<O> {
  const budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const isRetryable = options.isRetryable ?? isDatabaseUnavailable;
  const logger = options.logger ?? pino({ level: 'silent' });
  const now = options.now ?? (() => performance.now());

  return async (taskId, events, appendOptions) => {
    const keyed = { ...appendOptions, idempotencyKey: appendOptions?.idempotencyKey ?? randomUUID() } as O;
    const startedAt = now();
    for (let tries = 1; ; tries++) {
      try {
        const stored = await append(taskId, events, keyed);
        if (tries > 1) logger.info({ taskId, tries }, 'append went through after the database came back');
        return stored;
      } catch (err) {
        if (!isRetryable(err)) throw err;
        const delayMs = backoffDelay(tries - 1, backoff);
        const elapsedMs = now() - startedAt;
        if (elapsedMs + delayMs > budgetMs) {
          throw new AppendRetriesExhaustedError(taskId, tries, elapsedMs, { cause: err });
        }
        // Once per append, not per try: the line says an outage began, the next one that it ended.
        if (tries === 1) {
          logger.warn(
            { taskId, err, budgetMs },
            'append failed, the database is away; retrying within the budget',
          );
        }
        await sleep(delayMs, options.signal);
      }
    }
  };
}

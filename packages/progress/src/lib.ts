/**
 * Small helpers every package needs, kept in one place so that errors read
 * the same, causes are walked the same way and retries back off alike
 * wherever they happen:
 * - error description: {@link errorMessage}, {@link describeError}
 * - cause chain: {@link causeChain}, {@link describeCauses}
 * - timeout: {@link withTimeout}, {@link TimeoutError}
 * - backoff: {@link backoffDelay}, {@link BackoffOptions}
 * - sleep: {@link sleep}
 * - a database that is away, not wrong: {@link isDatabaseUnavailable}
 */
import { NodebatchError } from './errors.js';

/** The message of anything thrown: `err.message` for an Error, its string form otherwise. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The message with the driver's or system's code (`ECONNREFUSED`, `28P01`)
 * when the message does not name it already, for health reasons and log lines.
 * Node reports a failed dual-stack connect as an AggregateError without a
 * message: its errors are described instead, joined by "; ".
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const message =
    err.message || (err instanceof AggregateError ? err.errors.map(describeError).join('; ') : '');
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.length > 0 && !message.includes(code)
    ? `${message} (${code})`
    : message;
}

/**
 * The error and everything behind it, outermost first: each `cause` in turn,
 * and the errors of an AggregateError before its own cause. Wrappers such as
 * TransportUnavailableError keep the driver's error as their cause; what went
 * wrong is usually said deepest. Visits each object once, so a cycle ends it.
 */
export function* causeChain(err: unknown): Generator<object, void, undefined> {
  const seen = new Set<unknown>();
  function* visit(current: unknown): Generator<object, void, undefined> {
    if (!current || typeof current !== 'object' || seen.has(current)) return;
    seen.add(current);
    yield current;
    if (current instanceof AggregateError) for (const inner of current.errors) yield* visit(inner);
    yield* visit((current as { cause?: unknown }).cause);
  }
  yield* visit(err);
}

/**
 * Every distinct message along the cause chain, joined by ": " — for errors
 * such as fetch's "fetch failed" whose useful part is in `cause`.
 */
export function describeCauses(err: unknown): string {
  if (err === undefined || err === null) return 'unknown error';
  if (typeof err !== 'object') return String(err);
  const parts: string[] = [];
  for (const current of causeChain(err)) {
    const message = current instanceof Error ? describeError(current) : String(current);
    if (message && !parts.includes(message)) parts.push(message);
  }
  return parts.join(': ') || 'unknown error';
}

/** Something did not finish in the time it was given. */
export class TimeoutError extends NodebatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TIMEOUT', message, options);
  }
}

/**
 * Settles as `promise` does, or rejects once `ms` have passed: with a
 * TimeoutError "`what` timed out after `ms` ms", or with the error
 * `onTimeout` makes. The timer is cleared either way, so it never holds the
 * process open. The promise itself is not cancelled: whatever it does still
 * happens, later.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: string | (() => Error),
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          typeof onTimeout === 'string'
            ? new TimeoutError(`${onTimeout} timed out after ${ms} ms`)
            : onTimeout(),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bounds of an exponential backoff; transports, the notifier, evictions and node retries use it. */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. Default 200. */
  minDelayMs?: number;
  /** Upper bound of any delay, in ms. Default 10000. */
  maxDelayMs?: number;
}

export const DEFAULT_BACKOFF = { minDelayMs: 200, maxDelayMs: 10_000 } as const;

/**
 * The delay before retry number `attempt` (0 for the first retry): doubles
 * each time up to `maxDelayMs`, then takes a random point in the top `jitter`
 * share of it (default 0.5, "equal jitter"), so that replicas or nodes that
 * failed on the same server do not all retry in the same millisecond, while a
 * retry never comes sooner than `1 - jitter` of the nominal delay.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions & { jitter?: number } = {},
  random: () => number = Math.random,
): number {
  const min = Math.max(1, options.minDelayMs ?? DEFAULT_BACKOFF.minDelayMs);
  const max = Math.max(min, options.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs);
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  // Capping the exponent avoids Infinity after many attempts.
  const nominal = Math.min(max, min * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(nominal * (1 - jitter) + random() * nominal * jitter);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Socket errors of a server that is down, restarting or out of reach. */
const UNREACHABLE_CODES = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|EAI_AGAIN)$/;
/** node-postgres says these without a code. */
const UNREACHABLE_MESSAGES =
  /timeout exceeded when trying to connect|Connection terminated|connection error and is not queryable/i;

/**
 * True when the error, or anything behind it, says the database could not be
 * reached or went away (refused, reset, timed out, PostgreSQL shutting down
 * or starting: 57P0x, a connection exception: 08xxx, a session it ended for
 * idling in a transaction: 25P03), as opposed to refusing
 * what was asked. Only the first kind is worth retrying as it is.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (const current of causeChain(err)) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (UNREACHABLE_CODES.test(code) || /^(57P0|08|25P03$)/.test(code)))
      return true;
    if (current instanceof Error && UNREACHABLE_MESSAGES.test(current.message)) return true;
  }
  return false;
}

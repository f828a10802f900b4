import type { EventReader, Hint, StoredEvent, Transport, TransportHealth } from '@nodebatch/progress';
import {
  TransportUnavailableError,
  WatchCounts,
  describeError,
  probeRoundTrip,
  realScheduler,
} from '@nodebatch/progress';
import type { ScheduledTask, Scheduler } from '@nodebatch/progress';
import type { Logger } from 'pino';
import { BehaviorSubject, Subject, distinctUntilChanged } from 'rxjs';

/** Options of {@link createPollingTransport}. */
export interface PollingTransportOptions {
  /** The event log; every poll of the process is one query through it. */
  store: EventReader;
  /** Milliseconds between two polls (PROGRESS_POLL_INTERVAL). */
  intervalMs: number;
  logger: Logger;
  /** Events read per query; a full page is followed at once by the next one. Default 500. */
  batchSize?: number;
  /** Clock and timers; default {@link realScheduler}. */
  scheduler?: Scheduler;
}

export const DEFAULT_POLL_BATCH_SIZE = 500;

/**
 * A transport that reads the event log by global position: one loop per
 * process, one `readAll` per interval for all watched tasks (invariant 5, docs/invariants.md),
 * whatever the number of subscribers. Hints carry the events they announce,
 * so subscribers need no query of their own.
 */
export function createPollingTransport(options: PollingTransportOptions): Transport {
  const { store, intervalMs } = options;
  const batchSize = options.batchSize ?? DEFAULT_POLL_BATCH_SIZE;
  const scheduler = options.scheduler ?? realScheduler;
  const logger = options.logger.child({ transport: 'polling' });
  if (!(intervalMs > 0))
    throw new RangeError(`intervalMs must be a positive number of milliseconds, got ${intervalMs}`);
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }

  const watches = new WatchCounts();
  const hints$ = new Subject<Hint>();
  const resync$ = new Subject<void>();
  const healthState$ = new BehaviorSubject<TransportHealth>({ healthy: false, reason: 'not started' });
  const health$ = healthState$.pipe(
    distinctUntilChanged((a, b) => a.healthy === b.healthy && a.reason === b.reason),
  );

  /**
   * The last global position read. Null when it may be stale: then the next
   * poll takes the head position and emits resync$, so subscribers read from
   * the store what came before it and the loop delivers what comes after.
   */
  let cursor: number | null = null;
  let state: 'new' | 'started' | 'stopped' = 'new';
  let timer: ScheduledTask | null = null;
  let polling: Promise<void> | null = null;

  function setHealthy(): void {
    const previous = healthState$.value;
    if (previous.healthy) return;
    healthState$.next({ healthy: true, reason: null });
    if (previous.reason !== 'not started') {
      logger.info('polling recovered: the event store answers again');
      // Failed polls may have left subscribers behind their task; they catch up from the store.
      resync$.next();
    }
  }

  function setUnhealthy(err: unknown): void {
    const reason = `event store query failed: ${describeError(err)}`;
    if (!healthState$.value.healthy && healthState$.value.reason === reason) return;
    // One line per change of state, not one per failed poll.
    if (healthState$.value.healthy) logger.warn({ err }, 'polling unhealthy: the event store query failed');
    healthState$.next({ healthy: false, reason });
  }

  function emitHints(events: readonly StoredEvent[]): void {
    const byTask = new Map<string, StoredEvent[]>();
    for (const event of events) {
      if (!watches.has(event.taskId)) continue;
      let list = byTask.get(event.taskId);
      if (!list) byTask.set(event.taskId, (list = []));
      list.push(event);
    }
    for (const [taskId, taskEvents] of byTask) {
      const last = taskEvents[taskEvents.length - 1]!;
      hints$.next({ taskId, seq: last.seq, events: taskEvents, readFromLog: true });
    }
  }

  async function poll(): Promise<void> {
    if (watches.size === 0) {
      // Nothing to serve: no query. What is committed meanwhile is read by the
      // resync that follows the next head position.
      cursor = null;
      return;
    }
    try {
      if (cursor === null) {
        cursor = await store.headPosition();
        setHealthy();
        resync$.next();
        return;
      }
      for (;;) {
        const page = await store.readAll({ afterPosition: cursor, limit: batchSize });
        setHealthy();
        if (page.length > 0) {
          cursor = page[page.length - 1]!.position;
          emitHints(page);
        }
        if (page.length < batchSize || state !== 'started') break;
      }
    } catch (err) {
      setUnhealthy(err);
    }
  }

  function scheduleNext(delayMs = intervalMs): void {
    if (state !== 'started') return;
    timer = scheduler.schedule(() => {
      timer = null;
      const started = scheduler.now();
      polling = poll().finally(() => {
        polling = null;
        // Polls start one interval apart, however long the read took: an
        // event committed just after a read waits at most one interval for the
        // next (waiting a full interval after each read made it interval + read).
        scheduleNext(Math.max(0, intervalMs - (scheduler.now() - started)));
      });
    }, delayMs);
  }

  return {
    type: 'polling',
    hints$: hints$.asObservable(),
    resync$: resync$.asObservable(),
    health$,

    watch(taskId) {
      watches.add(taskId);
    },
    unwatch(taskId) {
      watches.remove(taskId);
    },

    async start() {
      if (state === 'stopped')
        throw new TransportUnavailableError('the polling transport was stopped; create a new one');
      if (state === 'started') return;
      try {
        cursor = await store.headPosition();
      } catch (err) {
        setUnhealthy(err);
        throw new TransportUnavailableError(
          `polling cannot start: event store query failed: ${describeError(err)}`,
          {
            cause: err,
          },
        );
      }
      state = 'started';
      setHealthy();
      logger.debug({ intervalMs, batchSize, position: cursor }, 'polling started');
      scheduleNext();
    },

    async probe(timeoutMs) {
      let roundTripMs: number;
      try {
        roundTripMs = await probeRoundTrip({
          scheduler,
          timeoutMs,
          send: () => store.headPosition().then(() => undefined),
          timeoutError: () =>
            new TransportUnavailableError(
              `polling probe: the event store did not answer within ${timeoutMs} ms`,
            ),
        });
      } catch (err) {
        if (state === 'started') setUnhealthy(err);
        if (err instanceof TransportUnavailableError) throw err;
        throw new TransportUnavailableError(
          `polling probe: event store query failed: ${describeError(err)}`,
          {
            cause: err,
          },
        );
      }
      if (state === 'started') setHealthy();
      return roundTripMs;
    },

    async stop() {
      if (state === 'stopped') return;
      state = 'stopped';
      timer?.cancel();
      timer = null;
      // No query of this transport may run after stop() resolved.
      await polling;
      hints$.complete();
      resync$.complete();
      healthState$.next({ healthy: false, reason: 'stopped' });
      healthState$.complete();
    },
  };
}

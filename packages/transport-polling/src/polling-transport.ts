import type { EventReader, Hint, StoredEvent, Transport, TransportHealth } from '@nodebatch/progress';
import {
  TransportUnavailableError,
  WatchCounts,
  eventsByTask,
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
  /**
   * Milliseconds from a poll that found committed events held back behind an
   * append in flight (see EventReader.readAllPage) to a follow-up read; each
   * further follow-up of the same interval waits twice as long as the one
   * before. Default 20.
   */
  followUpDelayMs?: number;
  /**
   * Follow-up reads at most per interval, however many events are held back.
   * Default 5: with the default delay, reads about 20, 60, 140, 300 and 620 ms
   * after the poll (each delay counts from the end of the read before).
   */
  maxFollowUps?: number;
}

export const DEFAULT_POLL_BATCH_SIZE = 500;
const DEFAULT_FOLLOW_UP_DELAY_MS = 20;
const DEFAULT_MAX_FOLLOW_UPS = 5;

/**
 * A transport that reads the event log by global position: one loop per
 * process, one read per interval for all watched tasks (invariant 5, docs/invariants.md),
 * whatever the number of subscribers. Hints carry the events they announce,
 * so subscribers need no query of their own.
 *
 * A read returns nothing above an append still in flight (invariant 4), so
 * under a steady stream of appends a poll finds events that committed just
 * before it held back behind one that has not. Waiting for the next poll would
 * deliver them one interval late; instead the loop reads again shortly after,
 * for all tasks at once, until it has read past them, at most `maxFollowUps`
 * times per interval. Events that commit after a poll are the next poll's.
 */
export function createPollingTransport(options: PollingTransportOptions): Transport {
  const { store, intervalMs } = options;
  const batchSize = options.batchSize ?? DEFAULT_POLL_BATCH_SIZE;
  const followUpDelayMs = options.followUpDelayMs ?? DEFAULT_FOLLOW_UP_DELAY_MS;
  const maxFollowUps = options.maxFollowUps ?? DEFAULT_MAX_FOLLOW_UPS;
  const scheduler = options.scheduler ?? realScheduler;
  const logger = options.logger.child({ transport: 'polling' });
  if (!(intervalMs > 0))
    throw new RangeError(`intervalMs must be a positive number of milliseconds, got ${intervalMs}`);
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  if (!(followUpDelayMs > 0)) {
    throw new RangeError(`followUpDelayMs must be a positive number of milliseconds, got ${followUpDelayMs}`);
  }
  if (!(Number.isInteger(maxFollowUps) && maxFollowUps >= 0)) {
    throw new RangeError(`maxFollowUps must be a non-negative integer, got ${maxFollowUps}`);
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
  /** When the last regular poll started (scheduler clock); follow-ups do not move it. */
  let pollStartedAt = 0;
  /**
   * The highest position the last regular poll found held back and the loop
   * has not read yet; null when there is nothing to follow up.
   */
  let followUpTo: number | null = null;
  /** Follow-up reads since the last regular poll. */
  let followUps = 0;

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
    for (const [taskId, taskEvents] of eventsByTask(events, (taskId) => watches.has(taskId))) {
      const last = taskEvents[taskEvents.length - 1]!;
      hints$.next({ taskId, seq: last.seq, events: taskEvents, readFromLog: true });
    }
  }

  /** Reads what is new; resolves with the highest position the last page held back, if any. */
  async function poll(): Promise<number | null> {
    if (watches.size === 0) {
      // Nothing to serve: no query. What is committed meanwhile is read by the
      // resync that follows the next head position.
      cursor = null;
      return null;
    }
    try {
      if (cursor === null) {
        cursor = await store.headPosition();
        setHealthy();
        resync$.next();
        return null;
      }
      for (;;) {
        const page = await store.readAllPage({ afterPosition: cursor, limit: batchSize });
        setHealthy();
        const { events } = page;
        if (events.length > 0) {
          cursor = events[events.length - 1]!.position;
          emitHints(events);
        }
        if (events.length < batchSize || state !== 'started') return page.heldBackTo;
      }
    } catch (err) {
      setUnhealthy(err);
      return null;
    }
  }

  /** `untilPollMs`: time left until the next regular poll is due. */
  function scheduleNext(untilPollMs = intervalMs): void {
    if (state !== 'started') return;
    const followUpDelay = followUpDelayMs * 2 ** followUps;
    // A follow-up only when it comes before the regular poll, which reads as much.
    const followUp = followUpTo !== null && followUps < maxFollowUps && followUpDelay < untilPollMs;
    timer = scheduler.schedule(
      () => {
        timer = null;
        if (followUp) {
          followUps++;
        } else {
          pollStartedAt = scheduler.now();
          followUps = 0;
        }
        polling = poll()
          .then((heldBackTo) => {
            // Only what a regular poll held back is followed up; what commits
            // after it waits at most one interval for the next.
            if (!followUp) followUpTo = heldBackTo;
            else if (cursor === null || followUpTo === null || cursor >= followUpTo) followUpTo = null;
          })
          .finally(() => {
            polling = null;
            // Polls start one interval apart, however long the read took: an
            // event committed just after a read waits at most one interval for the
            // next (waiting a full interval after each read made it interval + read).
            scheduleNext(Math.max(0, intervalMs - (scheduler.now() - pollStartedAt)));
          });
      },
      followUp ? followUpDelay : untilPollMs,
    );
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

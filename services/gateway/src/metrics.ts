import type { HintCheckCounts, NotifierInfo, StoredEvent } from '@nodebatch/progress';
import { HINT_REJECTION_REASONS, HINT_SIGNATURE_PROBLEMS, TRANSPORT_TYPES } from '@nodebatch/progress';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CountedHistogram } from './counted-histogram.js';
import type { Observable, Subscription } from 'rxjs';

const STREAM_KINDS = ['sse', 'ws'] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

/** Append times by event: every subscriber of a task gets the same event object, so its time is parsed once. */
const appendTimes = new WeakMap<StoredEvent, number>();

function appendTimeMs(event: StoredEvent): number {
  let time = appendTimes.get(event);
  if (time === undefined) {
    time = Date.parse(event.time);
    appendTimes.set(event, time);
  }
  return time;
}

/**
 * The gateway's Prometheus metrics, in a registry of its own so that two
 * gateways in one process (tests) do not share counters.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #eventsDelivered = new Counter({
    name: 'nodebatch_gateway_events_delivered_total',
    help: 'Progress events written to clients',
    labelNames: ['kind'] as const,
    registers: [this.registry],
    collect: () => {
      for (const kind of STREAM_KINDS) {
        if (this.#uncounted[kind] === 0) continue;
        this.#eventsDelivered.inc({ kind }, this.#uncounted[kind]);
        this.#uncounted[kind] = 0;
      }
    },
  });
  readonly #activeStreams = new Gauge({
    name: 'nodebatch_gateway_active_streams',
    help: 'Open progress streams (SSE responses, WebSocket task subscriptions)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly #slowClients = new Counter({
    name: 'nodebatch_gateway_slow_client_disconnects_total',
    help: 'Clients disconnected because their send buffer filled',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  /** Observed once per delivery: counted without prom-client's per-call label hashing. */
  readonly #deliveryLag = new CountedHistogram<StreamKind>({
    name: 'nodebatch_gateway_delivery_lag_seconds',
    help: 'Time from an event being appended (its time) to it being written to a client',
    label: 'kind',
    values: STREAM_KINDS,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registry: this.registry,
  });
  readonly #notifierActive = new Gauge({
    name: 'nodebatch_notifier_active_transport',
    help: '1 for the transport the notifier currently uses, 0 for the others',
    labelNames: ['transport', 'configured'] as const,
    registers: [this.registry],
  });
  readonly #notifierHealthy = new Gauge({
    name: 'nodebatch_notifier_healthy',
    help: '1 when the active transport is healthy',
    registers: [this.registry],
  });
  readonly #notifierFallback = new Gauge({
    name: 'nodebatch_notifier_fallback',
    help: '1 when the notifier runs on a fallback transport instead of the configured one',
    registers: [this.registry],
  });
  readonly #fallbackTransitions = new Counter({
    name: 'nodebatch_notifier_fallback_transitions_total',
    help: 'Changes between the configured transport and a fallback',
    labelNames: ['to'] as const,
    registers: [this.registry],
  });
  #notifierSubscription: Subscription | undefined;
  /**
   * Deliveries since the last scrape, added to the counter when it is read:
   * prom-client's `inc`, even on a bound child, hashes the labels on every call.
   */
  readonly #uncounted: Record<StreamKind, number> = { sse: 0, ws: 0 };

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    for (const kind of STREAM_KINDS) {
      this.#activeStreams.set({ kind }, 0);
      this.#eventsDelivered.inc({ kind }, 0);
      this.#slowClients.inc({ kind }, 0);
    }
  }

  /** Follows the notifier's state until stop(). */
  observeNotifier(info$: Observable<NotifierInfo>): void {
    let previous: NotifierInfo | undefined;
    this.#notifierSubscription = info$.subscribe((info) => {
      for (const transport of TRANSPORT_TYPES) {
        this.#notifierActive.set(
          { transport, configured: info.configured },
          transport === info.active ? 1 : 0,
        );
      }
      this.#notifierHealthy.set(info.healthy ? 1 : 0);
      this.#notifierFallback.set(info.fallback ? 1 : 0);
      if (previous && previous.fallback !== info.fallback) {
        this.#fallbackTransitions.inc({ to: info.fallback ? 'fallback' : 'configured' });
      }
      previous = info;
    });
  }

  delivered(kind: StreamKind, event: StoredEvent, now = Date.now()): void {
    this.#uncounted[kind]++;
    const lagSeconds = (now - appendTimeMs(event)) / 1000;
    if (Number.isFinite(lagSeconds)) this.#deliveryLag.record(kind, Math.max(0, lagSeconds));
  }

  streamOpened(kind: StreamKind): void {
    this.#activeStreams.inc({ kind });
  }

  streamClosed(kind: StreamKind): void {
    this.#activeStreams.dec({ kind });
  }

  /**
   * Exposes what became of the inline events of notifications (invariant 8),
   * read from the progress streams at each scrape.
   */
  observeHintChecks(counts: () => HintCheckCounts): void {
    new Counter({
      name: 'nodebatch_progress_hint_events_total',
      help: 'Inline events of progress notifications: trusted (from this process or read from the log here), authenticated (their MAC verified with PROGRESS_HINT_KEY), matched (checked against the log) or rejected (dropped; subscribers got the stored event)',
      labelNames: ['outcome', 'reason'] as const,
      registers: [this.registry],
      collect() {
        const current = counts();
        this.reset();
        this.inc({ outcome: 'trusted', reason: '' }, current.trusted);
        this.inc({ outcome: 'authenticated', reason: '' }, current.authenticated);
        this.inc({ outcome: 'matched', reason: '' }, current.matched);
        for (const reason of HINT_REJECTION_REASONS) {
          this.inc({ outcome: 'rejected', reason }, current.rejected[reason]);
        }
      },
    });
    new Counter({
      name: 'nodebatch_progress_hint_unauthenticated_events_total',
      help: 'Inline events of progress notifications whose MAC was invalid or missing while PROGRESS_HINT_KEY is set; each was checked against the log instead (and is counted as matched or rejected too)',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      collect() {
        const current = counts();
        this.reset();
        for (const reason of HINT_SIGNATURE_PROBLEMS) this.inc({ reason }, current.unauthenticated[reason]);
      },
    });
    new Counter({
      name: 'nodebatch_progress_false_announcements_total',
      help: 'Notifications that announced a seq the event log did not have when read afterwards',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(counts().falseAnnouncements);
      },
    });
  }

  slowClientDisconnected(kind: StreamKind): void {
    this.#slowClients.inc({ kind });
  }

  stop(): void {
    this.#notifierSubscription?.unsubscribe();
  }
}

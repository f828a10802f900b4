import { Subject, type Observable, type Subscription } from 'rxjs';
import type { StoredEvent } from './events.js';
import type { Hint, HintSource } from './transport.js';
import { eventsByTask } from './events-by-task.js';

/** Options of {@link LocalHintSource}. */
export interface LocalHintSourceOptions {
  /** Publishes every append this store commits (e.g. an InMemoryEventStore). Default: none; call publish(). */
  store?: { readonly committed$: Observable<readonly StoredEvent[]> };
  /**
   * Put the events in the hints. Default true. False sends hints by reference
   * (seq only), as a transport does when events do not fit its message, and
   * makes subscribers read every event from the store.
   */
  includeEvents?: boolean;
}

/**
 * A HintSource inside one process: every committed append becomes one hint
 * for its task, delivered synchronously to the watchers of that task. For a
 * single process (the producer and the subscribers share the store), and for
 * tests of anything that consumes hints.
 */
export class LocalHintSource implements HintSource {
  readonly #hints = new Subject<Hint>();
  readonly #resync = new Subject<void>();
  readonly #watchCounts = new Map<string, number>();
  readonly #includeEvents: boolean;
  readonly #storeSubscription: Subscription | null;
  /** Hints come from appends in this process: their events are the stored ones. */
  readonly inProcess = true;

  readonly hints$: Observable<Hint> = this.#hints.asObservable();
  readonly resync$: Observable<void> = this.#resync.asObservable();

  constructor(options: LocalHintSourceOptions = {}) {
    this.#includeEvents = options.includeEvents ?? true;
    this.#storeSubscription = options.store?.committed$.subscribe((events) => this.publish(events)) ?? null;
  }

  watch(taskId: string): void {
    this.#watchCounts.set(taskId, (this.#watchCounts.get(taskId) ?? 0) + 1);
  }

  unwatch(taskId: string): void {
    const count = this.#watchCounts.get(taskId) ?? 0;
    if (count <= 1) this.#watchCounts.delete(taskId);
    else this.#watchCounts.set(taskId, count - 1);
  }

  /** How many watch() calls for this task are not yet matched by unwatch(). */
  watchCount(taskId: string): number {
    return this.#watchCounts.get(taskId) ?? 0;
  }

  /** Tasks watched at least once. */
  watchedTasks(): string[] {
    return [...this.#watchCounts.keys()];
  }

  /** Announces committed events: one hint per task, only for watched tasks. */
  publish(events: readonly StoredEvent[]): void {
    for (const [taskId, taskEvents] of eventsByTask(events, (taskId) => this.#watchCounts.has(taskId))) {
      const seq = taskEvents.reduce((max, event) => Math.max(max, event.seq), 0);
      this.#hints.next(this.#includeEvents ? { taskId, seq, events: taskEvents } : { taskId, seq });
    }
  }

  /** Tells subscribers that hints may have been missed: they catch up from the store. */
  resync(): void {
    this.#resync.next();
  }

  /** Stops publishing the store's appends and completes the streams. */
  close(): void {
    this.#storeSubscription?.unsubscribe();
    this.#hints.complete();
    this.#resync.complete();
  }
}

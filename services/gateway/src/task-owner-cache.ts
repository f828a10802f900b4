import { UnknownTaskError } from '@nodebatch/progress';
import type { StoredEvent, StoredEventOf } from '@nodebatch/progress';

export interface TaskOwnerCacheOptions {
  readTask(taskId: string, options: { limit: number }): Promise<StoredEvent[]>;
  /** Tasks remembered at most; the oldest is forgotten first. Default 10,000. */
  maxEntries?: number;
}

/**
 * The TaskCreated event of tasks, read once per task. A task's creator never
 * changes, and thousands of clients opening streams on one task at once must
 * cost one query, not one each (the pool would make them queue and time out).
 * Concurrent lookups of one task share the read; failures are not remembered.
 */
export class TaskOwnerCache {
  readonly #readTask: TaskOwnerCacheOptions['readTask'];
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Promise<StoredEventOf<'TaskCreated'> | null>>();

  constructor(options: TaskOwnerCacheOptions) {
    this.#readTask = options.readTask;
    this.#maxEntries = options.maxEntries ?? 10_000;
  }

  /** The task's TaskCreated event, or null when there is no such task. */
  created(taskId: string): Promise<StoredEventOf<'TaskCreated'> | null> {
    const cached = this.#entries.get(taskId);
    if (cached) return cached;
    const lookup = this.#read(taskId);
    this.#entries.set(taskId, lookup);
    if (this.#entries.size > this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    lookup.then(
      (created) => {
        // An unknown id may still be created later: only real tasks are remembered.
        if (created === null) this.#entries.delete(taskId);
      },
      () => this.#entries.delete(taskId),
    );
    return lookup;
  }

  async #read(taskId: string): Promise<StoredEventOf<'TaskCreated'> | null> {
    try {
      const [first] = await this.#readTask(taskId, { limit: 1 });
      return first?.type === 'TaskCreated' ? first : null;
    } catch (err) {
      if (err instanceof UnknownTaskError) return null;
      throw err;
    }
  }
}

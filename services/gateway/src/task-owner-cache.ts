/** What authorization knows of a task id. */
export type TaskOwnership =
  | { state: 'exists'; ownerId: string }
  /** Retention deleted its events; the audit trail remembers whose it was. */
  | { state: 'gone'; ownerId: string }
  | { state: 'unknown' };

export interface TaskOwnerCacheOptions {
  /** The task's owner from the task listing; null when there is no such task (now). */
  readOwner(taskId: string): Promise<string | null>;
  /** The owner of a task that once existed (the audit trail); null when it never did. Default: never. */
  readFormerOwner?(taskId: string): Promise<string | null>;
  /** Memory the remembered answers may take, estimated from string lengths. Default 4 MiB. */
  maxBytes?: number;
  /**
   * How long "no such task" is remembered, ms. A client retrying an unknown
   * id costs no query within it; short, because another replica may create
   * that id later (ids are random, so only a mistyped or forged id repeats).
   * Default 5000.
   */
  unknownTtlMs?: number;
  /** Clock, ms. Default Date.now. */
  now?: () => number;
}

interface Entry {
  ownership: TaskOwnership;
  bytes: number;
  /** Only for `unknown`. */
  expiresAt?: number;
}

/** Map, string and object headers of one entry, roughly, in V8. */
const ENTRY_OVERHEAD_BYTES = 96;

/**
 * Who owns which task, the only thing authorization needs. A task's owner
 * never changes, and thousands of clients opening streams on one task at once
 * must cost one query, not one each (the pool would make them queue and time
 * out). Concurrent lookups of one task share the read; failures are not
 * remembered; the least recently used answers are forgotten first once the
 * byte budget is reached.
 */
export class TaskOwnerCache {
  readonly #options: TaskOwnerCacheOptions;
  readonly #maxBytes: number;
  readonly #unknownTtlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Promise<TaskOwnership>>();
  #bytes = 0;

  constructor(options: TaskOwnerCacheOptions) {
    this.#options = options;
    this.#maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    this.#unknownTtlMs = options.unknownTtlMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  /** Bytes the remembered answers take, as estimated. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  lookup(taskId: string): Promise<TaskOwnership> {
    const entry = this.#entries.get(taskId);
    if (entry && (entry.expiresAt === undefined || entry.expiresAt > this.#now())) {
      // Most recently used last: the first key is the next to be forgotten.
      this.#entries.delete(taskId);
      this.#entries.set(taskId, entry);
      return Promise.resolve(entry.ownership);
    }
    if (entry) this.#delete(taskId);
    const pending = this.#pending.get(taskId);
    if (pending) return pending;
    const lookup = this.#read(taskId).then(
      (ownership) => {
        this.#pending.delete(taskId);
        this.#store(taskId, ownership);
        return ownership;
      },
      (err: unknown) => {
        this.#pending.delete(taskId);
        throw err;
      },
    );
    this.#pending.set(taskId, lookup);
    return lookup;
  }

  /** A task this gateway just created: known without a query. */
  remember(taskId: string, ownerId: string): void {
    this.#store(taskId, { state: 'exists', ownerId });
  }

  /** Drops what is known of a task (its events turned out to be gone). */
  forget(taskId: string): void {
    this.#delete(taskId);
  }

  async #read(taskId: string): Promise<TaskOwnership> {
    const owner = await this.#options.readOwner(taskId);
    if (owner !== null) return { state: 'exists', ownerId: owner };
    const former = (await this.#options.readFormerOwner?.(taskId)) ?? null;
    return former === null ? { state: 'unknown' } : { state: 'gone', ownerId: former };
  }

  #store(taskId: string, ownership: TaskOwnership): void {
    this.#delete(taskId);
    const owner = ownership.state === 'unknown' ? '' : ownership.ownerId;
    const bytes = ENTRY_OVERHEAD_BYTES + 2 * (taskId.length + owner.length);
    if (bytes > this.#maxBytes) return;
    this.#entries.set(taskId, {
      ownership,
      bytes,
      ...(ownership.state === 'unknown' ? { expiresAt: this.#now() + this.#unknownTtlMs } : {}),
    });
    this.#bytes += bytes;
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#delete(oldest);
    }
  }

  #delete(taskId: string): void {
    const entry = this.#entries.get(taskId);
    if (!entry) return;
    this.#entries.delete(taskId);
    this.#bytes -= entry.bytes;
  }
}

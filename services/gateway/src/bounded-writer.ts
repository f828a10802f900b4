/** A stream that says when it wants no more writes (Node's Writable, ServerResponse, net.Socket). */
export interface DrainableTarget {
  /** True after a write went over the stream's high-water mark, until 'drain'. */
  readonly writableNeedDrain: boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** A stream whose writes can be held and sent together (net.Socket). */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

export interface BoundedWriterOptions {
  target: DrainableTarget;
  /** Hands one chunk to the target (res.write, ws.send). */
  send(chunk: string): void;
  /** Bytes held while the target drains; one more and `onOverflow` runs. */
  maxQueuedBytes: number;
  /** The reader fell too far behind: the caller drops the connection. */
  onOverflow(queuedBytes: number): void;
  /**
   * Join the chunks written in the same turn into one `send` (SSE: messages
   * are self-delimiting, so a client cannot tell). A turn ends when the
   * microtask queue drains: every event of a hint, and of every hint parsed
   * from the same socket read, then costs the connection one write instead
   * of one each. Not for WebSocket frames.
   *
   * Not the end of the event loop's turn (setImmediate): the poll phase runs
   * every read that is ready before it, so behind a backlog of notifications
   * the first events of a burst waited in memory until the last was parsed.
   */
  coalesce?: boolean;
  /**
   * The socket under a target whose chunks must stay separate (WebSocket
   * frames): corked at the first chunk of a turn and uncorked at its end, so
   * the frames of one turn leave in one write.
   */
  cork?: Corkable;
}

/**
 * Writes to a stream without letting a slow reader grow memory: while the
 * target wants to drain, chunks wait in a queue of at most `maxQueuedBytes`.
 *
 * Measuring the target's own buffer instead would misjudge fast readers: a
 * page of events written in one tick sits in the (corked) response until the
 * next tick however fast the client reads. 'drain' is what says the reader
 * keeps up.
 */
export class BoundedWriter {
  readonly #options: BoundedWriterOptions;
  readonly #queue: string[] = [];
  #queuedBytes = 0;
  #waiting = false;
  #overflowed = false;
  /** Chunks written this turn, sent together at its end (`coalesce`). */
  #turn: string[] = [];
  /** An end of turn is queued (cleared by flushAll and discard, which leave nothing for it). */
  #turnQueued = false;
  #corked = false;

  constructor(options: BoundedWriterOptions) {
    this.#options = options;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Sends or queues a chunk; false once the queue overflowed (nothing more is accepted). */
  write(chunk: string): boolean {
    if (this.#overflowed) return false;
    if (this.#options.coalesce) {
      this.#turn.push(chunk);
      if (!this.#turnQueued) {
        this.#turnQueued = true;
        queueMicrotask(() => this.#endTurn());
      }
      return true;
    }
    return this.#accept(chunk);
  }

  #endTurn(): void {
    if (!this.#turnQueued) return;
    this.#turnQueued = false;
    const chunks = this.#turn;
    this.#turn = [];
    if (chunks.length > 0 && !this.#overflowed)
      this.#accept(chunks.length === 1 ? chunks[0]! : chunks.join(''));
  }

  #accept(chunk: string): boolean {
    if (!this.#waiting) {
      this.#send(chunk);
      return true;
    }
    this.#queue.push(chunk);
    this.#queuedBytes += Buffer.byteLength(chunk);
    if (this.#queuedBytes > this.#options.maxQueuedBytes) {
      this.#overflowed = true;
      this.#queue.length = 0;
      const queued = this.#queuedBytes;
      this.#queuedBytes = 0;
      this.#options.onOverflow(queued);
      return false;
    }
    return true;
  }

  /** True while the target drains (a heartbeat then has no point). */
  get backedUp(): boolean {
    return this.#waiting;
  }

  /** Hands every queued chunk to the target now (before ending the stream; bounded by the queue limit). */
  flushAll(): void {
    this.#turnQueued = false;
    const turn = this.#turn.splice(0);
    for (const chunk of this.#queue.splice(0)) this.#options.send(chunk);
    this.#queuedBytes = 0;
    if (turn.length > 0 && !this.#overflowed) this.#options.send(turn.join(''));
  }

  /** Drops what waits for the end of the turn (the connection is being destroyed). */
  discard(): void {
    this.#turnQueued = false;
    this.#turn.length = 0;
  }

  #send(chunk: string): void {
    const { cork } = this.#options;
    if (cork && !this.#corked) {
      this.#corked = true;
      cork.cork();
      queueMicrotask(() => {
        this.#corked = false;
        cork.uncork();
      });
    }
    this.#options.send(chunk);
    if (this.#options.target.writableNeedDrain) {
      this.#waiting = true;
      this.#options.target.once('drain', () => this.#drained());
    }
  }

  #drained(): void {
    this.#waiting = false;
    while (this.#queue.length > 0 && !this.#waiting && !this.#overflowed) {
      const chunk = this.#queue.shift()!;
      this.#queuedBytes -= Buffer.byteLength(chunk);
      this.#send(chunk);
    }
  }
}

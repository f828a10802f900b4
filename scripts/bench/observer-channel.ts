import { tail, type BenchChild } from './children.js';

/** A message to or from an observer process: its `type`, the `group` it concerns if any, its fields. */
interface ObserverMessage {
  type: string;
  group?: number;
  [field: string]: unknown;
}

/** An observer process ended, or did not answer in time, while the bench waited for its reply. */
class ObserverReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObserverReplyError';
  }
}

interface Waiter {
  matches(message: ObserverMessage): boolean;
  resolve(message: ObserverMessage): void;
  reject(err: Error): void;
}

/**
 * The IPC channel of an observer process (pipeline/sse-clients.mjs,
 * pipeline/hint-listener.mjs): commands out, replies matched by type and
 * group. A reply nobody waits for yet is kept until someone does, so that a
 * 'done' that arrives while the bench still reads its CPU counters is not lost.
 */
export class ObserverChannel {
  readonly #child: BenchChild;
  readonly #inbox: ObserverMessage[] = [];
  readonly #waiting = new Set<Waiter>();
  #exited: string | undefined;

  constructor(child: BenchChild) {
    this.#child = child;
    child.process.on('message', (message: ObserverMessage) => {
      for (const waiter of this.#waiting) {
        if (!waiter.matches(message)) continue;
        this.#waiting.delete(waiter);
        waiter.resolve(message);
        return;
      }
      this.#inbox.push(message);
    });
    child.process.once('exit', (code, signal) => {
      this.#exited = String(signal ?? code);
      // Give the log a moment to receive the last stderr lines.
      setTimeout(() => {
        for (const waiter of this.#waiting) waiter.reject(this.#exitError());
        this.#waiting.clear();
      }, 100);
    });
  }

  get pid(): number {
    return this.#child.pid;
  }

  send(message: ObserverMessage): void {
    if (this.#exited !== undefined) throw this.#exitError();
    this.#child.process.send(message);
  }

  /** The next message whose type is one of `types` (and, if given, of `group`). */
  receive(types: readonly string[], group: number | undefined, timeoutMs: number): Promise<ObserverMessage> {
    const matches = (message: ObserverMessage): boolean =>
      types.includes(message.type) && (group === undefined || message.group === group);
    const kept = this.#inbox.findIndex(matches);
    if (kept >= 0) return Promise.resolve(this.#inbox.splice(kept, 1)[0]!);
    if (this.#exited !== undefined) return Promise.reject(this.#exitError());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        matches,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.#waiting.delete(waiter);
        reject(
          new ObserverReplyError(
            `${this.#child.name} (pid ${this.#child.pid}) sent no ${types.join(' or ')}${group === undefined ? '' : ` of group ${group}`} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#waiting.add(waiter);
    });
  }

  #exitError(): ObserverReplyError {
    const { name, pid, logPath } = this.#child;
    return new ObserverReplyError(
      `${name} (pid ${pid}) exited (${this.#exited}) while the bench waited for it; its log ${logPath} ends:\n${tail(logPath)}`,
    );
  }
}

import { Subject } from 'rxjs';
import type { Hint, HintSource } from '../transport.js';

/**
 * A HintSource the test drives by hand: exact hints, in the exact order a
 * scenario needs. In-process by default (inline events are taken as they
 * are); `{ inProcess: false }` plays a transport from another process.
 */
export class ManualHintSource implements HintSource {
  readonly inProcess: boolean;
  readonly #hints = new Subject<Hint>();
  readonly #resync = new Subject<void>();
  readonly hints$ = this.#hints.asObservable();
  readonly resync$ = this.#resync.asObservable();
  readonly watchCalls: string[] = [];
  readonly unwatchCalls: string[] = [];

  constructor(options: { inProcess?: boolean } = {}) {
    this.inProcess = options.inProcess ?? true;
  }

  watch(taskId: string): void {
    this.watchCalls.push(taskId);
  }

  unwatch(taskId: string): void {
    this.unwatchCalls.push(taskId);
  }

  hint(hint: Hint): void {
    this.#hints.next(hint);
  }

  resync(): void {
    this.#resync.next();
  }

  fail(error: unknown): void {
    this.#hints.error(error);
  }
}

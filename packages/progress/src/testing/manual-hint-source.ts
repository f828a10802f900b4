import { Subject } from 'rxjs';
import type { Hint, HintSource } from '../transport.js';

/** A HintSource the test drives by hand: exact hints, in the exact order a scenario needs. */
export class ManualHintSource implements HintSource {
  readonly #hints = new Subject<Hint>();
  readonly #resync = new Subject<void>();
  readonly hints$ = this.#hints.asObservable();
  readonly resync$ = this.#resync.asObservable();
  readonly watchCalls: string[] = [];
  readonly unwatchCalls: string[] = [];

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

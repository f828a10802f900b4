import type { TaskState } from '@nodebatch/progress';

/**
 * One line of terminal output for a task's state: redrawn in place on a
 * terminal, printed at each tenth of progress otherwise (so CI logs stay short).
 */
export class ProgressBar {
  #lastDecile = -1;

  readonly #out: NodeJS.WriteStream;
  readonly #width: number;

  constructor(out: NodeJS.WriteStream, width = 30) {
    this.#out = out;
    this.#width = width;
  }

  render(state: TaskState, label: string): void {
    const percent = Math.floor(state.percent);
    const filled = Math.round((percent / 100) * this.#width);
    const line =
      `${label} [${'#'.repeat(filled)}${'-'.repeat(this.#width - filled)}] ${String(percent).padStart(3)}%` +
      ` ${state.done}/${state.total} nodes · ${state.succeeded} ok · ${state.failed} failed · ${state.status}`;
    if (this.#out.isTTY) {
      this.#out.write(`\r${line}\u001b[K`);
      return;
    }
    const decile = Math.floor(percent / 10);
    if (decile !== this.#lastDecile) {
      this.#lastDecile = decile;
      this.#out.write(`${line}\n`);
    }
  }

  finish(): void {
    if (this.#out.isTTY) this.#out.write('\n');
  }
}

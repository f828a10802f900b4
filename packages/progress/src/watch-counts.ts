/**
 * Counted watches of tasks: the transport's one loop serves every subscriber
 * of the process, so a task stays watched until its last subscriber unwatches.
 */
export class WatchCounts {
  readonly #counts = new Map<string, number>();

  /** Returns true when this is the first watch of the task. */
  add(taskId: string): boolean {
    const count = this.#counts.get(taskId) ?? 0;
    this.#counts.set(taskId, count + 1);
    return count === 0;
  }

  /** Returns true when this was the last watch of the task. */
  remove(taskId: string): boolean {
    const count = this.#counts.get(taskId);
    if (count === undefined) return false;
    if (count <= 1) {
      this.#counts.delete(taskId);
      return true;
    }
    this.#counts.set(taskId, count - 1);
    return false;
  }

  has(taskId: string): boolean {
    return this.#counts.has(taskId);
  }

  get size(): number {
    return this.#counts.size;
  }

  taskIds(): string[] {
    return [...this.#counts.keys()];
  }
}

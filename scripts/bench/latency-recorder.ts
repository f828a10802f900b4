/** Latencies in ms, kept compactly: every delivery of a run, or every round trip of a floor. */
export class LatencyRecorder {
  #samples = new Float64Array(1 << 16);
  #length = 0;

  add(ms: number): void {
    if (this.#length === this.#samples.length) this.#grow(this.#length + 1);
    this.#samples[this.#length++] = ms;
  }

  /** Adds many at once (an observer process's samples). */
  addAll(values: Float64Array): void {
    if (this.#length + values.length > this.#samples.length) this.#grow(this.#length + values.length);
    this.#samples.set(values, this.#length);
    this.#length += values.length;
  }

  get count(): number {
    return this.#length;
  }

  summary(): { p50: number; p99: number; max: number; count: number } {
    const [p50, p99, max] = this.quantiles([0.5, 0.99, 1]) as [number, number, number];
    return { p50, p99, max, count: this.#length };
  }

  /** The sample at each quantile (1 = the largest); NaN without samples. */
  quantiles(qs: readonly number[]): number[] {
    const sorted = this.#samples.slice(0, this.#length).sort();
    return qs.map((q) =>
      q >= 1
        ? (sorted[sorted.length - 1] ?? NaN)
        : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN),
    );
  }

  #grow(atLeast: number): void {
    const bigger = new Float64Array(Math.max(atLeast, this.#samples.length * 2));
    bigger.set(this.#samples.subarray(0, this.#length));
    this.#samples = bigger;
  }
}

import { Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** Options of {@link CountedHistogram}. */
interface CountedHistogramOptions<V extends string> {
  name: string;
  help: string;
  /** The one label, and every value it takes: each value gets its counts up front. */
  label: string;
  values: readonly V[];
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  registry: Registry;
}

interface Counts {
  /** Observations per bucket (not cumulative); the last slot is above every bound (+Inf). */
  buckets: Float64Array;
  sum: number;
  count: number;
}

type HistogramExport = Awaited<ReturnType<Histogram['get']>>;
/** prom-client's buckets carry their exemplar, null without one. */
type ExportedValue = HistogramExport['values'][number] & { exemplar?: null };

/**
 * A histogram with one label whose observations are counted in plain arrays,
 * for a hot path: prom-client's `observe`, even on a child bound with
 * `labels()`, validates and hashes the labels on every call, which at one
 * call per delivery cost a busy gateway about 4% of its CPU. It registers as
 * a prom-client Histogram (name, help, type, registry) and exports its counts
 * in the form prom-client's own Histogram does; only label values observed at
 * least once are exported, as there.
 */
export class CountedHistogram<V extends string> extends Histogram<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #label: string;
  readonly #bounds: readonly number[];
  readonly #counts = new Map<V, Counts>();

  constructor(options: CountedHistogramOptions<V>) {
    super({
      name: options.name,
      help: options.help,
      labelNames: [options.label],
      buckets: [...options.buckets],
      registers: [options.registry],
    });
    this.#name = options.name;
    this.#help = options.help;
    this.#label = options.label;
    this.#bounds = options.buckets;
    for (const value of options.values) {
      this.#counts.set(value, { buckets: new Float64Array(options.buckets.length + 1), sum: 0, count: 0 });
    }
  }

  /** Counts one observation; an undeclared label value or a value that is not finite is refused. */
  record(labelValue: V, value: number): void {
    const counts = this.#counts.get(labelValue);
    if (!counts) throw new RangeError(`${this.#name}: ${this.#label}="${labelValue}" was not declared`);
    if (!Number.isFinite(value)) throw new RangeError(`${this.#name}: ${value} is not a finite number`);
    let bucket = 0;
    while (bucket < this.#bounds.length && value > this.#bounds[bucket]!) bucket++;
    counts.buckets[bucket]!++;
    counts.sum += value;
    counts.count++;
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor resets too, before this class's fields exist.
    if (!(#counts in this)) return;
    for (const counts of this.#counts.values()) {
      counts.buckets.fill(0);
      counts.sum = 0;
      counts.count = 0;
    }
  }

  override get(): Promise<HistogramExport> {
    const values: ExportedValue[] = [];
    const bucket = `${this.#name}_bucket`;
    for (const [labelValue, counts] of this.#counts) {
      if (counts.count === 0) continue;
      const labels = { [this.#label]: labelValue };
      let cumulative = 0;
      this.#bounds.forEach((bound, index) => {
        cumulative += counts.buckets[index]!;
        values.push({
          value: cumulative,
          metricName: bucket,
          exemplar: null,
          labels: { le: bound, ...labels },
        });
      });
      values.push(
        { value: counts.count, metricName: bucket, exemplar: null, labels: { le: '+Inf', ...labels } },
        { value: counts.sum, metricName: `${this.#name}_sum`, labels },
        { value: counts.count, metricName: `${this.#name}_count`, labels },
      );
    }
    const result = { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values };
    // Cast: prom-client's types say `type` is a numeric enum and require
    // `collect`, while its own Histogram.get() returns the string 'histogram'
    // (the text format prints it) and no `collect`.
    return Promise.resolve(result as unknown as HistogramExport);
  }

  /** What the registry reads for the text format (prom-client calls it when a metric has it). */
  getForPromString(): Promise<HistogramExport> {
    return this.get();
  }
}

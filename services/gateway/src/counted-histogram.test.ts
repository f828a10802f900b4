import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CountedHistogram } from './counted-histogram.js';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];

function pair() {
  const counted = new Registry();
  const reference = new Registry();
  const histogram = new CountedHistogram<'sse' | 'ws'>({
    name: 'lag_seconds',
    help: 'Lag of a delivery',
    label: 'kind',
    values: ['sse', 'ws'],
    buckets: BUCKETS,
    registry: counted,
  });
  const own = new Histogram({
    name: 'lag_seconds',
    help: 'Lag of a delivery',
    labelNames: ['kind'],
    buckets: BUCKETS,
    registers: [reference],
  });
  return { counted, reference, histogram, own };
}

describe('CountedHistogram', () => {
  it("exports, as text and as JSON, what prom-client's own Histogram exports for the same observations", async () => {
    const { counted, reference, histogram, own } = pair();
    // On a bound, beyond the last bound, zero, and only one of the two label values.
    for (const value of [0, 0.001, 0.0011, 0.05, 0.1, 2, 10, 11, 1000]) {
      histogram.record('sse', value);
      own.observe({ kind: 'sse' }, value);
    }
    expect(await counted.metrics()).toBe(await reference.metrics());
    expect(await counted.getMetricsAsJSON()).toEqual(await reference.getMetricsAsJSON());

    histogram.record('ws', 0.5);
    own.observe({ kind: 'ws' }, 0.5);
    expect(await counted.metrics()).toBe(await reference.metrics());
  });

  it('exports nothing before an observation, and nothing again after reset', async () => {
    const { counted, reference, histogram, own } = pair();
    expect(await counted.metrics()).toBe(await reference.metrics());
    histogram.record('ws', 0.02);
    histogram.reset();
    own.observe({ kind: 'ws' }, 0.02);
    own.reset();
    expect(await counted.metrics()).toBe(await reference.metrics());
    expect(await counted.metrics()).not.toContain('lag_seconds_count');
  });

  it('refuses a label value it was not given, and a value that is not a number, naming them', () => {
    const { histogram } = pair();
    expect(() => histogram.record('other' as 'sse', 1)).toThrow('lag_seconds: kind="other" was not declared');
    expect(() => histogram.record('sse', Number.NaN)).toThrow('lag_seconds: NaN is not a finite number');
  });
});

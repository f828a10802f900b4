import { CDF_QUANTILES, type RunResult } from './measure.js';
import type { BenchResults } from './report.js';

const COLORS: Record<string, string> = {
  postgres: '#1f77b4',
  redis: '#d62728',
  polling: '#2ca02c',
  bullmq: '#7f7f7f',
};

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 60, right: 150, top: 40, bottom: 50 };

/** The pipeline runs of `kind` at the default subscriber count: one per transport and BullMQ. */
function chartRuns(results: BenchResults, kind: 'paced' | 'max'): RunResult[] {
  return results.runs.filter(
    (run) =>
      run.workload === 'pipeline' &&
      run.kind === kind &&
      run.atRateOf === undefined &&
      run.subscribers === results.options.subscribers,
  );
}

const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The latency distribution of the pipeline runs of one kind as an SVG:
 * cumulative share of deliveries (y) against append-to-client latency
 * (x, log scale), one curve per transport and BullMQ.
 */
export function latencyChartSvg(results: BenchResults, kind: 'paced' | 'max'): string {
  const runs = chartRuns(results, kind).filter((run) => run.cdfMs.some((value) => Number.isFinite(value)));
  const values = runs.flatMap((run) => run.cdfMs.filter((value) => Number.isFinite(value) && value > 0));
  const low = 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...values, 1))));
  const high = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (ms: number): number =>
    MARGIN.left +
    ((Math.log10(Math.max(ms, low)) - Math.log10(low)) / (Math.log10(high) - Math.log10(low))) * plotW;
  const y = (share: number): number => MARGIN.top + (1 - share) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${MARGIN.left}" y="22" font-size="14">${escapeXml(
      `Append → SSE client latency, pipeline ${kind} run, ${results.options.subscribers} subscribers (${results.startedAt.slice(0, 16)}Z)`,
    )}</text>`,
  );
  for (let decade = low; decade <= high; decade *= 10) {
    const px = x(decade).toFixed(1);
    parts.push(
      `<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${MARGIN.top + plotH}" stroke="#ddd"/>`,
      `<text x="${px}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${decade >= 1 ? decade.toFixed(0) : decade.toString()}</text>`,
    );
  }
  for (const share of [0, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) {
    const py = y(share).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" y1="${py}" x2="${MARGIN.left + plotW}" y2="${py}" stroke="#eee"/>`,
      `<text x="${MARGIN.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${share}</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle">latency, ms (log scale)</text>`,
    `<text x="16" y="${MARGIN.top + plotH / 2}" transform="rotate(-90 16 ${MARGIN.top + plotH / 2})" text-anchor="middle">share of deliveries</text>`,
  );
  runs.forEach((run, index) => {
    const color = COLORS[run.transport] ?? '#000';
    const points = run.cdfMs
      .map((ms, i) => (Number.isFinite(ms) ? `${x(ms).toFixed(1)},${y(CDF_QUANTILES[i]!).toFixed(1)}` : ''))
      .filter(Boolean)
      .join(' ');
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points}"/>`);
    const ly = MARGIN.top + 10 + index * 36;
    parts.push(
      `<line x1="${MARGIN.left + plotW + 12}" y1="${ly}" x2="${MARGIN.left + plotW + 32}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${MARGIN.left + plotW + 38}" y="${ly}" dominant-baseline="middle">${escapeXml(run.transport)}</text>`,
      `<text x="${MARGIN.left + plotW + 38}" y="${ly + 15}" dominant-baseline="middle" font-size="10">p99 ${run.latencyMs.p99.toFixed(1)} ms</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

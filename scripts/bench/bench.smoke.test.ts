import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runBench } from './bench-run.js';
import { ChildSet } from './children.js';
import { latencyChartSvg } from './latency-chart.js';
import { parseBenchOptions } from './options.js';
import { renderMarkdown, renderTargets } from './report.js';

/**
 * The bench's own code on a tiny configuration: every part runs, every
 * table has its rows, and each run accounts for every event (0 lost, 0
 * duplicated, none incomplete). No figure is judged here: timing belongs to
 * `pnpm bench`, not to a test.
 */
const children = new ChildSet(mkdtempSync(join(tmpdir(), 'nodebatch-bench-smoke-')));
afterAll(() => children.stop());

it(
  'runs every part of the bench on a tiny configuration and accounts for every event',
  { timeout: 240_000 },
  async () => {
    const options = parseBenchOptions([
      '--quick',
      '--transports',
      'postgres',
      '--subscribers',
      '4',
      '--tasks',
      '2',
      '--workers',
      '1',
      '--gateways',
      '1',
      '--events',
      '8',
      '--paced-events',
      '4',
      '--rate',
      '500',
      '--nodes',
      '3',
      '--concurrency',
      '2',
      '--scale-subscribers',
      '2,6',
      '--scale-gateways',
      '1,2',
      '--scale-gateway-subscribers',
      '6',
      '--scale-events',
      '3',
      '--idle-subscribers',
      '5',
      '--idle-window-s',
      '1',
      '--raw-samples',
      '50',
      '--timeout-s',
      '60',
    ]);
    // The test command builds the workspace before any test runs.
    const results = await runBench(options, children, () => undefined, false);
    expect(results.errors).toEqual([]);

    expect(results.rawFloor.pgNotify?.samples).toBe(30);
    expect(results.rawFloor.pgCommitNotify?.samples).toBe(30);
    expect(results.rawFloor.redisPublish?.samples).toBe(30);

    const rows = results.runs.map((run) => [
      run.transport,
      run.workload,
      run.kind,
      run.append ?? null,
      run.atRateOf ?? null,
      run.subscribers,
    ]);
    // BullMQ first: its max rate is the load of a paced nodebatch run that compares latency with it.
    expect(rows).toEqual([
      ['bullmq', 'pipeline', 'paced', null, null, 4],
      ['bullmq', 'pipeline', 'max', null, null, 4],
      ['postgres', 'pipeline', 'paced', 'batched', null, 4],
      ['postgres', 'pipeline', 'max', 'batched', null, 4],
      ['postgres', 'pipeline', 'paced', 'batched', 'bullmq-max', 4],
      ['postgres', 'pipeline', 'max', 'each', null, 4],
      ['postgres', 'full', 'max', null, null, 4],
    ]);
    const bullmqMax = results.runs[1]!;
    const atBullmqRate = results.runs[4]!;
    expect(atBullmqRate.paceMs).toBeCloseTo((2 * 1000) / bullmqMax.eventsPerSec, 6);
    expect(results.scale.map((run) => [run.subscribers, run.gateways])).toEqual([
      [2, 1],
      [6, 1],
      [6, 2],
    ]);
    for (const run of [...results.runs, ...results.scale]) {
      expect({
        run: run.transport,
        lost: run.lost,
        duplicated: run.duplicated,
        incomplete: run.incomplete,
      }).toEqual({
        run: run.transport,
        lost: 0,
        duplicated: 0,
        incomplete: 0,
      });
    }
    // Pipeline runs: every subscriber gets its job's events and the terminal one.
    // Each pipeline system made its max run once, unrecorded, before its measured runs.
    expect(results.warmUps.map((run) => [run.transport, run.kind, run.lost, run.duplicated])).toEqual([
      ['bullmq', 'max', 0, 0],
      ['postgres', 'max', 0, 0],
    ]);
    // Every pipeline run knows how fast its jobs reported (appended; BullMQ: updateProgress returned).
    for (const run of results.runs.filter((candidate) => candidate.workload === 'pipeline'))
      expect(run.reportedPerSec).toBeGreaterThan(0);
    const pipelineMax = results.runs[3]!;
    expect(pipelineMax.events).toBe(2 * (8 + 1));
    expect(pipelineMax.deliveries).toBe(4 * (8 + 1));
    expect(bullmqMax.deliveries).toBe(4 * (8 + 1));
    expect(atBullmqRate.deliveries).toBe(4 * (8 + 1));
    expect(results.runs[6]!.cpuSeconds?.simulator).toBeGreaterThanOrEqual(0);
    // Every run measures the servers' CPU, and the postgres runs together used some of PostgreSQL's.
    for (const run of results.runs) expect(run.serverCpuSeconds?.postgres).toBeGreaterThanOrEqual(0);
    const postgresCpu = results.runs
      .filter((run) => run.transport === 'postgres')
      .reduce((sum, run) => sum + run.serverCpuSeconds!.postgres, 0);
    expect(postgresCpu).toBeGreaterThan(0);
    // Where the kernel reports CPU pressure, every run says how long tasks waited for a core.
    if (existsSync('/proc/pressure/cpu')) {
      for (const run of results.runs) expect(run.cpuPressure).toBeGreaterThanOrEqual(0);
    }

    expect(results.stages.map((stage) => [stage.transport, stage.kind])).toEqual([
      ['postgres', 'paced'],
      ['postgres', 'max'],
    ]);
    expect(results.stages[0]!.appendReturned?.count).toBeGreaterThan(0);
    expect(results.stages[0]!.gatewayWrite?.count).toBe(4 * (4 + 1));
    // The durable round trip sampled while the paced run went on.
    expect(results.stages[0]!.loadedFloor?.count).toBeGreaterThan(0);
    // The observers, each in a process of its own: the hint listener timed the run's hints, and
    // both it and the SSE client processes sampled their own event-loop delay.
    expect(results.stages[0]!.hintAtListener?.count).toBeGreaterThan(0);
    expect(results.stages[0]!.listenerDelay?.count).toBeGreaterThan(0);
    expect(results.stages[0]!.clientDelay?.count).toBeGreaterThan(0);
    // The max run's stages come from the pipeline's own processes only: no extra observer shares its cores.
    const maxStages = results.stages[1]!;
    expect(maxStages.appendReturned?.count).toBeGreaterThan(0);
    expect(maxStages.gatewayWrite?.count).toBe(4 * (8 + 1));
    expect(maxStages.hintAtListener).toBeUndefined();
    expect(maxStages.loadedFloor).toBeUndefined();
    // The gateways' event-loop delay over each run, from their /metrics.
    for (const stage of results.stages) expect(stage.gatewayDelay?.p99).toBeGreaterThan(0);
    expect(results.idle.map((idle) => [idle.transport, idle.subscribers])).toEqual([['postgres', 5]]);

    const markdown = renderMarkdown(results);
    for (const heading of [
      '## Raw floor',
      '## Pipeline runs',
      '## Latency by stage',
      '## Scale',
      '## Idle subscribers',
      '## Full runs',
      '## Where the CPU went',
      '## Targets (issue 15)',
    ])
      expect(markdown).toContain(heading);
    // postgres: throughput against BullMQ, paced latency, gateway CPU linear in deliveries.
    expect(renderTargets(results).filter((line) => /\*\*(MET|MISSED)\*\*/.test(line))).toHaveLength(3);
    const svg = latencyChartSvg(results, 'paced');
    expect(svg.match(/<polyline /g)).toHaveLength(2);
  },
);

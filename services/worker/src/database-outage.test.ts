import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startWorker } from './start-worker.js';
import type { WorkerHandle } from './start-worker.js';
import { startPrivateDatabaseSetup } from '../test/support/private-database.js';
import type { PrivateDatabaseSetup } from '../test/support/private-database.js';
import {
  eventsOfType,
  expectEachNodeSucceededOnce,
  submitBatch,
  waitForEnd,
  waitForEvents,
  capturingLogger,
  simulatedClusterEnv,
  simulatedNodes,
} from '../test/support/batch-harness.js';

/*
 * A short database outage during a run does not end the run: the worker's
 * appends are retried within WORKER_APPEND_RETRY_BUDGET_MS, each batch under
 * one idempotency key, so the run goes on where it was once PostgreSQL is
 * back, and nothing is written twice. A private PostgreSQL is stopped in the
 * middle of a batch; the queue is on the shared Redis, which stays up.
 */

const NODE_COUNT = 60;
const nodes = simulatedNodes(NODE_COUNT);
const { logger, lines: logLines } = capturingLogger();

describe('a worker whose database stops for a few seconds mid-run', () => {
  let setup: PrivateDatabaseSetup;
  let worker: WorkerHandle;

  beforeAll(async () => {
    setup = await startPrivateDatabaseSetup({
      env: { ...simulatedClusterEnv(NODE_COUNT, 150), WORKER_APPEND_RETRY_BUDGET_MS: '60000' },
    });
    worker = await startWorker({ config: setup.config, logger });
  }, 120_000);

  afterAll(async () => {
    await worker?.close({ graceMs: 1000 });
    await setup?.close();
  }, 60_000);

  const appendRetried = (taskId: string) => (line: Record<string, unknown>) =>
    line.taskId === taskId && String(line.msg).startsWith('append failed');
  const jobFailed = (taskId: string) => (line: Record<string, unknown>) =>
    line.jobId === taskId && String(line.msg).startsWith('batch job failed');

  /** Starts a batch, stops PostgreSQL once the run is under way, and starts it again once `until` was logged. */
  async function batchThroughOutage(
    until: (taskId: string) => (line: Record<string, unknown>) => boolean,
  ): Promise<string> {
    const { runtime, queue, server } = setup;
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes, concurrency: 2 });
    await waitForEvents(runtime, taskId, (event) => event.type === 'NodeSucceeded', 5);
    await server.stop();
    await vi.waitFor(() => expect(logLines.some(until(taskId))).toBe(true), {
      timeout: 30_000,
      interval: 50,
    });
    await server.start();
    return taskId;
  }

  it('finishes the run it was in, with every event once', async () => {
    const { runtime } = setup;
    // Up again once an append of the run has failed and is being retried (or, were it not, the job failed).
    const taskId = await batchThroughOutage((id) => (line) => appendRetried(id)(line) || jobFailed(id)(line));
    const { state, events } = await waitForEnd(runtime, taskId, 120_000);
    expect(state.outcome?.type).toBe('TaskCompleted');
    expect(state.outcome?.data).toEqual({ succeeded: NODE_COUNT, failed: 0, skipped: 0 });
    // One run from start to end: the job was not failed and retried.
    expect(eventsOfType(events, 'TaskStarted')).toHaveLength(1);
    expectEachNodeSucceededOnce(events, nodes);
    // No batch written twice: each node started once.
    const starts = eventsOfType(events, 'NodeStarted').map((event) => event.data.node);
    expect(starts.length).toBe(NODE_COUNT);
    expect(new Set(starts).size).toBe(NODE_COUNT);
    expect(
      logLines.some((line) => line.taskId === taskId && String(line.msg).startsWith('append went through')),
    ).toBe(true);
  }, 240_000);

  it('stops the run once the budget is spent; the job runs again and resumes from the log', async () => {
    const { runtime, config } = setup;
    await worker.close({ graceMs: 1000 });
    worker = await startWorker({
      config: { ...config, worker: { ...config.worker, appendRetryBudgetMs: 300 } },
      logger,
    });
    // Down until the run gave up.
    const taskId = await batchThroughOutage(jobFailed);
    const { state, events } = await waitForEnd(runtime, taskId, 120_000);
    expect(state.outcome?.data).toEqual({ succeeded: NODE_COUNT, failed: 0, skipped: 0 });
    expect(eventsOfType(events, 'TaskStarted').map((event) => event.data.attempt)).toEqual([1, 2]);
    expectEachNodeSucceededOnce(events, nodes);
    expect(
      logLines.some(
        (line) =>
          line.jobId === taskId && (line.err as { type?: string })?.type === 'AppendRetriesExhaustedError',
      ),
    ).toBe(true);
  }, 240_000);
});

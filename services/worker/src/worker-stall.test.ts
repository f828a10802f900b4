import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startBatchSetup } from '../test/support/batch-setup.js';
import type { BatchSetup } from '../test/support/batch-setup.js';
import {
  eventsOfType,
  expectEachNodeSucceededOnce,
  simulatedClusterEnv,
  simulatedNodes,
  submitBatch,
  waitForEnd,
  waitForEvents,
} from '../test/support/batch-harness.js';
import { spawnWorker, stopWorker } from '../test/support/worker-process.js';
import type { WorkerProcess } from '../test/support/worker-process.js';

/*
 * Invariant 9: a worker that lost its job stops. Two worker processes; the one
 * running a drain is frozen with SIGSTOP until the other took the job over
 * (its lock expired), then thawed with SIGCONT: its in-flight node operations
 * finish and try to append, and the fence turns them away.
 */

const NODE_COUNT = 90;
const nodes = simulatedNodes(NODE_COUNT);
/** Short locks, so the frozen worker loses its job within seconds. */
const QUEUE_OPTIONS = { lockDurationMs: 3000, stalledIntervalMs: 500 };
const LOST_TASK_LINE = 'this run lost the task';

describe('a worker frozen past its job lock (SIGSTOP, then SIGCONT)', () => {
  let setup: BatchSetup;
  let runtime: Runtime;
  let queue: BatchQueue;
  let workers: WorkerProcess[] = [];

  beforeAll(async () => {
    setup = await startBatchSetup('nb_worker_stall', {
      env: { ...simulatedClusterEnv(NODE_COUNT, 100), LOG_LEVEL: 'warn' },
    });
    ({ runtime, queue } = setup);
    workers = await Promise.all([
      spawnWorker(setup.env, QUEUE_OPTIONS),
      spawnWorker(setup.env, QUEUE_OPTIONS),
    ]);
  }, 240_000);

  afterAll(async () => {
    await Promise.all(workers.map(stopWorker));
    await setup?.close();
  }, 60_000);

  it('appends nothing after the new attempt started, every node succeeds once, one terminal event', async () => {
    try {
      await frozenWorkerScenario();
    } catch (err) {
      // What each worker said, to tell a slow takeover from a wrong one.
      const said = workers.map(
        (worker) => `--- worker ${worker.id}:\n${worker.output.slice(-40).join('\n')}`,
      );
      throw new Error(`${(err as Error).message}\n${said.join('\n')}`, { cause: err });
    }
  }, 600_000);

  async function frozenWorkerScenario(): Promise<void> {
    const taskId = await submitBatch(runtime, queue, { action: 'drain', nodes, concurrency: 3 });
    const [first] = await waitForEvents(runtime, taskId, (event) => event.type === 'TaskStarted');
    const stale = workers.find(
      (worker) => first?.type === 'TaskStarted' && worker.id === first.data.workerId,
    );
    const other = workers.find((worker) => worker !== stale);
    expect(stale, 'the TaskStarted names one of the two workers').toBeDefined();
    await waitForEvents(runtime, taskId, (event) => event.type === 'NodeSucceeded', 6);

    stale!.child.kill('SIGSTOP');
    // Frozen for as long as it takes the other worker to see the lock expire and start attempt 2.
    await waitForEvents(
      runtime,
      taskId,
      (event) => event.type === 'TaskStarted' && event.data.attempt === 2,
      1,
      180_000,
    );
    stale!.child.kill('SIGCONT');

    const { state, events } = await waitForEnd(runtime, taskId, 240_000);
    // The thawed worker tried to record its in-flight nodes, was refused, and said why once.
    await vi.waitFor(
      () =>
        expect(
          stale!.output.filter((line) => line.includes(LOST_TASK_LINE)),
          stale!.output.join('\n'),
        ).toHaveLength(1),
      { timeout: 60_000, interval: 100 },
    );

    const starts = eventsOfType(events, 'TaskStarted');
    expect(starts.map((event) => [event.data.workerId, event.data.attempt])).toEqual([
      [stale!.id, 1],
      [other!.id, 2],
    ]);
    const takeover = starts[1]!.seq;
    const succeededBefore = new Set(
      eventsOfType(events, 'NodeSucceeded')
        .filter((event) => event.seq < takeover)
        .map((event) => event.data.node),
    );
    // After the takeover only the new run starts nodes: each once, none already done.
    const startedAfter = eventsOfType(events, 'NodeStarted').filter((event) => event.seq > takeover);
    const startedAfterNodes = startedAfter.map((event) => event.data.node);
    expect(new Set(startedAfterNodes).size).toBe(startedAfterNodes.length);
    expect(startedAfterNodes.filter((node) => succeededBefore.has(node))).toEqual([]);
    expect(succeededBefore.size + startedAfterNodes.length).toBe(NODE_COUNT);

    expectEachNodeSucceededOnce(events, nodes);
    const terminal = events.filter((event) =>
      ['TaskCompleted', 'TaskCancelled', 'TaskFailed'].includes(event.type),
    );
    expect(terminal).toHaveLength(1);
    expect(state.outcome?.data).toEqual({ succeeded: NODE_COUNT, failed: 0, skipped: 0 });
    // The thawed worker is still alive and serving: it stopped the run, not itself.
    expect(stale!.child.exitCode).toBeNull();
  }
});

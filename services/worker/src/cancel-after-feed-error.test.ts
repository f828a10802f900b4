import { createEventStore } from '@nodebatch/event-store';
import { ProgressStreams } from '@nodebatch/progress';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startWorker } from './start-worker.js';
import type { WorkerHandle } from './start-worker.js';
import { startPrivateDatabaseSetup } from '../test/support/private-database.js';
import type { PrivateDatabaseSetup } from '../test/support/private-database.js';
import {
  eventsOfType,
  submitBatch,
  waitForEnd,
  waitForEvents,
  capturingLogger,
  simulatedClusterEnv,
  simulatedNodes,
} from '../test/support/batch-harness.js';

/*
 * A cancel is honoured after the run's event feed recovered from an error.
 * The worker's feed reads the log as a role of its own and gives up on a
 * failed read at once (readRetries 0): while that role may not read, an event
 * of the task makes the feed fail. Once it may read again, a cancel must
 * still stop the nodes in flight, which the simulated cluster holds for ten
 * minutes. A private PostgreSQL, since the fault is a role of the server.
 */

const NODE_COUNT = 6;
const nodes = simulatedNodes(NODE_COUNT);
const { logger, lines: logLines } = capturingLogger();
const FEED_LOST = 'lost the task event feed';

describe('a cancel after the worker lost and regained its task event feed', () => {
  let setup: PrivateDatabaseSetup;
  let worker: WorkerHandle;
  let admin: pg.Client;
  let feedPool: pg.Pool;

  beforeAll(async () => {
    setup = await startPrivateDatabaseSetup({ env: simulatedClusterEnv(NODE_COUNT, 600_000) });
    const { server, config, runtime } = setup;
    admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('CREATE ROLE nb_feed LOGIN');
    await admin.query('GRANT SELECT ON events, tasks TO nb_feed');
    feedPool = new pg.Pool({
      connectionString: `postgres://nb_feed@127.0.0.1:${server.port}/postgres`,
      max: 2,
    });
    feedPool.on('error', () => undefined);
    const feedStore = createEventStore({ pool: feedPool });
    worker = await startWorker({
      config,
      logger,
      runtime: {
        store: runtime.store,
        notifier: runtime.notifier,
        streams: new ProgressStreams({ store: feedStore, hints: runtime.notifier, readRetries: 0 }),
      },
    });
  }, 120_000);

  afterAll(async () => {
    await worker?.close({ graceMs: 500 });
    await feedPool?.end();
    await admin?.end();
    await setup?.close();
  }, 60_000);

  it('stops the nodes in flight and ends with TaskCancelled', async () => {
    const { runtime, queue } = setup;
    const taskId = await submitBatch(runtime, queue, { action: 'cordon', nodes, concurrency: 2 });
    await waitForEvents(runtime, taskId, (event) => event.type === 'NodeStarted', 2);

    await admin.query('REVOKE SELECT ON events, tasks FROM nb_feed');
    // An event the feed must read to deliver: the read is refused and the feed fails.
    await runtime.notifier.append(taskId, [
      { type: 'NodeProgress', data: { node: 'sim-node-1', done: 0, total: 1, message: 'still cordoning' } },
    ]);
    await vi.waitFor(
      () =>
        expect(
          logLines.some((line) => line.taskId === taskId && String(line.msg).startsWith(FEED_LOST)),
        ).toBe(true),
      { timeout: 60_000, interval: 50 },
    );
    await admin.query('GRANT SELECT ON events, tasks TO nb_feed');

    await runtime.notifier.append(taskId, [{ type: 'CancelRequested', data: { by: 'tester' } }]);
    const { state, events } = await waitForEnd(runtime, taskId, 60_000);
    expect(state.outcome?.type).toBe('TaskCancelled');
    expect(state.outcome?.data).toMatchObject({ succeeded: 0, failed: 2, notStarted: nodes.slice(2) });
    expect(eventsOfType(events, 'NodeFailed').map((event) => event.data.code)).toEqual([
      'ABORTED',
      'ABORTED',
    ]);
  }, 240_000);
});

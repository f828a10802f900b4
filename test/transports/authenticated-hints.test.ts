import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { filter } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProgressStreams } from '@nodebatch/progress';
import type { HintSource, StoredEvent } from '@nodebatch/progress';
import { InstrumentedReader } from '@nodebatch/progress/testing';
import { createRuntime } from '@nodebatch/runtime';
import type { Runtime } from '@nodebatch/runtime';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { completed, configFor, created, progressEvent } from './support.js';

/**
 * PROGRESS_HINT_KEY from the configuration to the subscriber: a runtime like
 * a worker's appends through its notifier, which signs what its transport
 * sends; a runtime like a gateway's receives through its notifier, whose
 * transport verifies, and its subscribers get the events without a read of
 * the log.
 */

const WAIT = { timeout: 30_000, interval: 10 };

let cleanup: (() => Promise<void>) | undefined;

afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
}, 60_000);

async function workerAndGateway(
  transport: 'postgres' | 'redis',
): Promise<{ worker: Runtime; gateway: Runtime; db: TestDatabase }> {
  const db = await createTestDatabase({ prefix: 'hint_key' });
  const config = configFor(db.url, {
    PROGRESS_NOTIFY_TYPE: transport,
    REDIS_URL: sharedRedisUrl(),
    PROGRESS_HINT_KEY: randomBytes(32).toString('base64'),
  });
  const channels =
    transport === 'postgres'
      ? { postgresChannel: uniqueName('hint_key') }
      : { redisChannel: uniqueName('hint-key') };
  const logger = pino({ level: 'warn' });
  const worker = await createRuntime({ config, logger, retention: false, ...channels });
  const gateway = await createRuntime({ config, logger, retention: false, migrate: false, ...channels });
  cleanup = async () => {
    await gateway.close();
    await worker.close();
    await db.drop();
  };
  return { worker, gateway, db };
}

/**
 * The notifier's hints that carry events. The Redis transport's position
 * check also announces seqs without events, once a second; one that ran
 * between a commit and its PUBLISH would have the subscribers read the log,
 * and this test is about the hints that carry events.
 */
function inlineHintsOf(source: HintSource): HintSource {
  return {
    hints$: source.hints$.pipe(filter((hint) => hint.events !== undefined)),
    resync$: source.resync$,
    watch: (taskId) => source.watch(taskId),
    unwatch: (taskId) => source.unwatch(taskId),
  };
}

describe.each(['postgres', 'redis'] as const)('%s with PROGRESS_HINT_KEY on both sides', (transport) => {
  it('a worker-side notifier signs and a gateway-side one verifies: subscribers get the events without a store read', async () => {
    const { worker, gateway } = await workerAndGateway(transport);
    expect(gateway.notifier.info).toMatchObject({ active: transport, fallback: false });
    const taskId = uniqueName('task');
    await worker.notifier.append(taskId, [created()]);

    const reader = new InstrumentedReader(gateway.store);
    const streams = new ProgressStreams({ store: reader, hints: inlineHintsOf(gateway.notifier) });
    const events: StoredEvent[] = [];
    let done = false;
    const subscription = streams.events$(taskId).subscribe({
      next: (event) => events.push(event),
      complete: () => (done = true),
    });
    try {
      await vi.waitFor(() => expect(events).toHaveLength(1), WAIT);
      const readsBefore = reader.calls.readTask + reader.calls.latestSeqs;

      for (let n = 1; n <= 5; n++) await worker.notifier.append(taskId, [progressEvent(n, 5)]);
      await worker.notifier.append(taskId, [completed()]);
      await vi.waitFor(() => expect(done).toBe(true), WAIT);

      expect(events).toEqual(await gateway.store.readTask(taskId));
      expect(reader.calls.readTask + reader.calls.latestSeqs).toBe(readsBefore);
      // 6, or 7 when the hint of the first append reached the gateway after it began to watch the task.
      expect(streams.hintCheckCounts().authenticated).toBeGreaterThanOrEqual(6);
      expect(streams.hintCheckCounts()).toMatchObject({
        matched: 0,
        unauthenticated: { invalid: 0, missing: 0 },
      });
    } finally {
      subscription.unsubscribe();
    }
  });
});

import { UnknownTaskError } from '@nodebatch/progress';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_RETENTION_MS } from './postgres-event-store.js';
import {
  createStoreFixture,
  nodeProgress,
  taskCompleted,
  taskCreated,
  type StoreFixture,
} from './testing/store-fixture.js';

const NOW = new Date('2026-03-01T00:00:00.000Z');
const DAY = 24 * 60 * 60 * 1000;
const daysAgo = (days: number): string => new Date(NOW.getTime() - days * DAY).toISOString();

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture({ now: () => NOW });
});

afterAll(async () => {
  await fixture?.close();
});

/** A task created `createdDaysAgo` and, unless null, finished `finishedDaysAgo`. */
async function seedTask(
  taskId: string,
  createdDaysAgo: number,
  finishedDaysAgo: number | null,
): Promise<void> {
  await fixture.store.append(taskId, [
    { ...taskCreated(), time: daysAgo(createdDaysAgo) },
    { ...nodeProgress('node-a', 1), time: daysAgo(createdDaysAgo) },
  ]);
  if (finishedDaysAgo !== null)
    await fixture.store.append(taskId, [{ ...taskCompleted(), time: daysAgo(finishedDaysAgo) }]);
}

async function eventCount(taskId: string): Promise<number> {
  const { rows } = await fixture.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM events WHERE task_id = $1',
    [taskId],
  );
  return rows[0]!.n;
}

describe('deleteExpiredTasks', () => {
  it('deletes tasks finished longer ago than the retention, never running ones', async () => {
    expect(DEFAULT_RETENTION_MS).toBe(7 * DAY);
    await seedTask('t-old-done', 10, 8);
    await seedTask('t-old-running', 30, null);
    await seedTask('t-recent-done', 10, 6);
    const deleted = await fixture.store.deleteExpiredTasks();
    expect(deleted).toEqual({ tasks: 1, events: 3 });
    expect(await eventCount('t-old-done')).toBe(0);
    await expect(fixture.store.readTask('t-old-done')).rejects.toBeInstanceOf(UnknownTaskError);
    expect(await fixture.store.getTask('t-old-done')).toBeNull();
    expect(await fixture.store.readTask('t-old-running')).toHaveLength(2);
    expect(await fixture.store.readTask('t-recent-done')).toHaveLength(3);
    // A shorter retention reaches the recently finished task, still not the running one.
    expect(await fixture.store.deleteExpiredTasks({ olderThanMs: 5 * DAY })).toEqual({ tasks: 1, events: 3 });
    expect(await eventCount('t-old-running')).toBe(2);
    expect(await fixture.store.getTask('t-old-running')).toMatchObject({
      status: 'running',
      finishedAt: null,
    });
  });

  it('deletes in batches until nothing is left', async () => {
    for (let i = 0; i < 7; i++) await seedTask(`t-batch-${i}`, 20, 15);
    expect(await fixture.store.deleteExpiredTasks({ batchSize: 3 })).toEqual({ tasks: 7, events: 21 });
    expect(await fixture.store.deleteExpiredTasks({ batchSize: 3 })).toEqual({ tasks: 0, events: 0 });
  });
});

describe('startRetentionJob', () => {
  it('deletes expired tasks on its first run and stops', async () => {
    await seedTask('t-job-old', 12, 9);
    await seedTask('t-job-running', 12, null);
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const job = fixture.store.startRetentionJob({ intervalMs: 60 * 60 * 1000, logger });
    await vi.waitFor(() => expect(lines.some((line) => line.msg === 'deleted expired tasks')).toBe(true), {
      timeout: 20_000,
      interval: 20,
    });
    await job.stop();
    expect(await eventCount('t-job-old')).toBe(0);
    expect(await eventCount('t-job-running')).toBe(2);
    expect(lines.find((line) => line.msg === 'deleted expired tasks')).toMatchObject({
      tasks: 1,
      events: 3,
      job: 'event-retention',
    });
  });
});

import type { NewEvent } from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStoreFixture, taskCreated, type StoreFixture } from './test-support/store-fixture.js';

let fixture: StoreFixture;

const at = (minute: number): string => new Date(Date.UTC(2026, 0, 1, 12, minute)).toISOString();

beforeAll(async () => {
  fixture = await createStoreFixture();
});

afterAll(async () => {
  await fixture?.close();
});

describe('task summaries', () => {
  it('follows the task through its events in the same transaction as the append', async () => {
    const { store } = fixture;
    await store.append('t-life', [{ ...taskCreated('carol', ['a', 'b', 'c', 'a']), time: at(0) }]);
    expect(await store.getTask('t-life')).toEqual({
      taskId: 't-life',
      userId: 'carol',
      action: 'cordon',
      status: 'pending',
      total: 3,
      done: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      lastSeq: 1,
      createdAt: at(0),
      updatedAt: at(0),
      finishedAt: null,
    });
    const events: NewEvent[] = [
      { type: 'TaskStarted', data: { attempt: 1 } },
      { type: 'NodeStarted', data: { node: 'a', attempt: 1 } },
      { type: 'NodeSucceeded', data: { node: 'a' } },
      { type: 'NodeFailed', data: { node: 'b', error: 'timeout', retryable: true } },
    ];
    await store.append(
      't-life',
      events.map((event) => ({ ...event, time: at(1) })),
    );
    expect(await store.getTask('t-life')).toMatchObject({
      status: 'running',
      done: 2,
      succeeded: 1,
      failed: 1,
      lastSeq: 5,
      updatedAt: at(1),
    });
    await store.append('t-life', [
      { type: 'CancelRequested', data: { by: 'carol' }, time: at(2) },
      { type: 'NodeSkipped', data: { node: 'c', reason: 'cancelled' }, time: at(2) },
    ]);
    expect(await store.getTask('t-life')).toMatchObject({
      status: 'cancelling',
      done: 3,
      skipped: 1,
      finishedAt: null,
    });
    await store.append('t-life', [
      { type: 'TaskCancelled', data: { succeeded: 1, failed: 1, skipped: 1, notStarted: [] }, time: at(3) },
    ]);
    expect(await store.getTask('t-life')).toMatchObject({
      status: 'cancelled',
      lastSeq: 8,
      finishedAt: at(3),
    });
  });
});

describe('node counts in the summary', () => {
  it("counts each node once, and only the task's own nodes, as the fold does", async () => {
    const { store } = fixture;
    await store.append('t-dup', [
      taskCreated('carol', ['a', 'b', 'c']),
      { type: 'NodeSucceeded', data: { node: 'a' } },
      { type: 'NodeSucceeded', data: { node: 'a' } },
    ]);
    expect(await store.getTask('t-dup')).toMatchObject({ done: 1, succeeded: 1 });
    // A resumed worker reports a node again, and one the task does not have.
    await store.append('t-dup', [
      { type: 'NodeFailed', data: { node: 'a', error: 'again', retryable: false } },
      { type: 'NodeSucceeded', data: { node: 'z' } },
      { type: 'NodeSkipped', data: { node: 'b', reason: 'cordoned' } },
      { type: 'NodeSkipped', data: { node: 'b', reason: 'twice' } },
    ]);
    expect(await store.getTask('t-dup')).toMatchObject({
      total: 3,
      done: 2,
      succeeded: 1,
      failed: 0,
      skipped: 1,
    });
    await store.append('t-dup', [
      { type: 'NodeFailed', data: { node: 'c', error: 'gone', retryable: false } },
    ]);
    expect(await store.getTask('t-dup')).toMatchObject({ done: 3, succeeded: 1, failed: 1, skipped: 1 });
  });
});

describe('listTasks', () => {
  beforeAll(async () => {
    const { store } = fixture;
    // dave: six tasks, created a minute apart; every other one completed.
    for (let i = 0; i < 6; i++) {
      await store.append(`t-dave-${i}`, [{ ...taskCreated('dave', ['n']), time: at(10 + i) }]);
      if (i % 2 === 0) {
        await store.append(`t-dave-${i}`, [
          { type: 'NodeSucceeded', data: { node: 'n' }, time: at(20) },
          { type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 }, time: at(20) },
        ]);
      }
    }
    await store.append('t-erin-0', [{ ...taskCreated('erin', ['n']), time: at(30) }]);
  });

  it("lists one user's tasks, newest first", async () => {
    const tasks = await fixture.store.listTasks({ userId: 'dave' });
    expect(tasks.map((task) => task.taskId)).toEqual([5, 4, 3, 2, 1, 0].map((i) => `t-dave-${i}`));
  });

  it('filters by status', async () => {
    const completed = await fixture.store.listTasks({ userId: 'dave', status: 'completed' });
    expect(completed.map((task) => task.taskId)).toEqual(['t-dave-4', 't-dave-2', 't-dave-0']);
    expect(completed.every((task) => task.succeeded === 1 && task.finishedAt === at(20))).toBe(true);
    const pending = await fixture.store.listTasks({ status: 'pending' });
    expect(pending.map((task) => task.taskId)).toEqual(['t-erin-0', 't-dave-5', 't-dave-3', 't-dave-1']);
  });

  it('pages with limit and before', async () => {
    const first = await fixture.store.listTasks({ userId: 'dave', limit: 4 });
    expect(first.map((task) => task.taskId)).toEqual(['t-dave-5', 't-dave-4', 't-dave-3', 't-dave-2']);
    const next = await fixture.store.listTasks({ userId: 'dave', limit: 4, before: first.at(-1)!.createdAt });
    expect(next.map((task) => task.taskId)).toEqual(['t-dave-1', 't-dave-0']);
  });

  it('answers the user-and-status listing from its index', async () => {
    const { pool } = fixture;
    const client = await pool.connect();
    try {
      // Tiny tables would be scanned whatever the indexes; ask what the planner does when it must choose.
      await client.query('BEGIN');
      await client.query('SET LOCAL enable_seqscan = off');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT * FROM tasks WHERE user_id = 'dave' AND status = 'completed' ORDER BY created_at DESC, task_id DESC LIMIT 50`,
      );
      const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/Index Scan using tasks_user_status_created_idx/);
      expect(plan).not.toMatch(/Sort/);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

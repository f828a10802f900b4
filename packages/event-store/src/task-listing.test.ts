import type { NewEvent } from '@nodebatch/progress';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventStore } from './postgres-event-store.js';
import {
  createStoreFixture,
  taskCompleted,
  taskCreated,
  type StoreFixture,
} from './testing/store-fixture.js';

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
      cluster: null,
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

describe('the cluster in the summary', () => {
  it('is the cluster TaskCreated names, in getTask and listTasks, and stays through later appends', async () => {
    const { store } = fixture;
    await store.append('t-west', [
      {
        type: 'TaskCreated',
        data: { userId: 'gina', action: 'cordon', nodes: ['n'], params: {}, cluster: 'west' },
      },
    ]);
    await store.append('t-west', [{ type: 'TaskStarted', data: { attempt: 1 } }]);
    expect(await store.getTask('t-west')).toMatchObject({ cluster: 'west', status: 'running' });
    // Ended, so the status listings below see only their own tasks.
    await store.append('t-none', [taskCreated('gina', ['n']), taskCompleted(0)]);
    const listed = await store.listTasks({ userId: 'gina' });
    expect(listed.map((task) => [task.taskId, task.cluster])).toEqual([
      ['t-none', null],
      ['t-west', 'west'],
    ]);
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
    const next = await fixture.store.listTasks({ userId: 'dave', limit: 4, before: first.at(-1)! });
    expect(next.map((task) => task.taskId)).toEqual(['t-dave-1', 't-dave-0']);
  });

  it('pages through tasks created in the same millisecond without skipping or repeating one', async () => {
    const { store } = fixture;
    // Seven tasks, five of them created at the same instant, so that every page boundary below falls
    // between two tasks with equal timestamps.
    const times = [at(40), at(41), at(41), at(41), at(41), at(41), at(42)];
    for (const [i, time] of times.entries()) {
      await store.append(`t-frank-${i}`, [{ ...taskCreated('frank', ['n']), time }]);
    }
    const expected = [
      't-frank-6',
      't-frank-5',
      't-frank-4',
      't-frank-3',
      't-frank-2',
      't-frank-1',
      't-frank-0',
    ];
    for (const limit of [1, 2, 3]) {
      const seen: string[] = [];
      let page = await store.listTasks({ userId: 'frank', limit });
      while (page.length > 0) {
        seen.push(...page.map((task) => task.taskId));
        page = await store.listTasks({ userId: 'frank', limit, before: page.at(-1)! });
      }
      expect(seen, `pages of ${limit}`).toEqual(expected);
    }
  });

  it('answers the user-and-status listing, first page and next, from its index', async () => {
    // The statements listTasks sends, recorded on a pool of its own so that EXPLAIN plans exactly them.
    const issued: { text: string; values: unknown[] }[] = [];
    const pool = new pg.Pool({ connectionString: fixture.database.url, max: 1 });
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (text: unknown, values?: unknown) => unknown;
      (client as { query: unknown }).query = (text: unknown, values?: unknown) => {
        if (typeof text === 'string') issued.push({ text, values: (values as unknown[] | undefined) ?? [] });
        return query(text, values);
      };
    });
    try {
      const store = createEventStore({ pool });
      const first = await store.listTasks({ userId: 'dave', status: 'completed', limit: 2 });
      const next = await store.listTasks({
        userId: 'dave',
        status: 'completed',
        limit: 2,
        before: first.at(-1)!,
      });
      expect([...first, ...next].map((task) => task.taskId)).toEqual(['t-dave-4', 't-dave-2', 't-dave-0']);
      const listings = issued.filter(({ text }) => /from "tasks"/i.test(text));
      expect(listings).toHaveLength(2);
      expect(listings[1]!.text).toMatch(/\("created_at", "task_id"\) </);

      const client = await fixture.pool.connect();
      try {
        // Tiny tables would be scanned whatever the indexes; ask what the planner does when it must choose.
        await client.query('BEGIN');
        await client.query('SET LOCAL enable_seqscan = off');
        const plans: string[] = [];
        for (const { text, values } of listings) {
          const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values);
          plans.push(rows.map((row) => row['QUERY PLAN']).join('\n'));
        }
        expect(plans[0]).toMatch(/Index Scan using tasks_user_status_created_idx/);
        // The next page starts inside an index on (…, created_at DESC, task_id DESC): the cursor is an
        // index condition, not a filter over every older row.
        expect(plans[1]).toMatch(/Index Scan using tasks_\w*status_created_idx/);
        expect(plans[1]).toMatch(/Index Cond: .*ROW\(created_at, task_id\) < ROW\(/);
        for (const plan of plans) expect(plan).not.toMatch(/Sort/);
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
    } finally {
      await pool.end();
    }
  });
});

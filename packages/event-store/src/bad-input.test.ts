import {
  InvalidEventError,
  StaleSequenceError,
  TaskAlreadyEndedError,
  UnknownTaskError,
  type NewEvent,
} from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventTooLargeError } from './errors.js';
import { DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_TASK_CREATED_BYTES } from './postgres-event-store.js';
import {
  createStoreFixture,
  nodeProgress,
  taskCompleted,
  taskCreated,
  type StoreFixture,
} from './test-support/store-fixture.js';

/** Every rejected append must leave the database exactly as it was. */

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture({ maxEventBytes: 2048 });
  await fixture.store.append('t-existing', [taskCreated(), nodeProgress('node-a', 1)]);
  await fixture.store.append('t-ended', [taskCreated(), taskCompleted()]);
});

afterAll(async () => {
  await fixture?.close();
});

/** Everything an append could change: rows of both tables, and the position sequence. */
async function snapshotDatabase(): Promise<unknown> {
  const { pool } = fixture;
  const events = await pool.query('SELECT * FROM events ORDER BY position');
  const tasks = await pool.query('SELECT * FROM tasks ORDER BY task_id');
  const sequence = await pool.query('SELECT last_value FROM event_position_seq');
  return { events: events.rows, tasks: tasks.rows, sequence: sequence.rows };
}

async function expectRejectedWithoutWrites(
  taskId: string,
  events: readonly NewEvent[],
  options: { expectedSeq?: number } = {},
): Promise<unknown> {
  const before = await snapshotDatabase();
  const error = await fixture.store.append(taskId, events, options).then(
    () => new Error('the append was accepted'),
    (rejection: unknown) => rejection,
  );
  expect(await snapshotDatabase()).toEqual(before);
  return error;
}

const bad = (event: unknown): NewEvent => event as NewEvent;

describe('a rejected append writes nothing', () => {
  it('rejects data that fails its schema, naming the event index and type', async () => {
    const error = await expectRejectedWithoutWrites('t-existing', [
      nodeProgress('node-a', 2),
      bad({ type: 'NodeProgress', data: { node: 'node-a', done: -1, total: 3 } }),
    ]);
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as Error).message).toMatch(/event 1 \(NodeProgress\)/);
    expect((error as Error).message).toMatch(/done/);
  });

  it('rejects an unknown event type', async () => {
    const error = await expectRejectedWithoutWrites('t-existing', [bad({ type: 'NodeExploded', data: {} })]);
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as Error).message).toMatch(/event 0: unknown type "NodeExploded"/);
  });

  it('rejects a TaskCreated without nodes, and a time that is not ISO-8601', async () => {
    const noNodes = await expectRejectedWithoutWrites('t-new', [
      bad({ type: 'TaskCreated', data: { userId: 'u', action: 'cordon', nodes: [] } }),
    ]);
    expect(noNodes).toBeInstanceOf(InvalidEventError);
    const badTime = await expectRejectedWithoutWrites('t-existing', [
      { ...nodeProgress('node-a', 2), time: 'yesterday' },
    ]);
    expect(badTime).toBeInstanceOf(InvalidEventError);
    expect((badTime as Error).message).toMatch(/"yesterday" is not an ISO-8601/);
  });

  it('rejects an empty or oversized task id', async () => {
    expect(await expectRejectedWithoutWrites('', [taskCreated()])).toBeInstanceOf(InvalidEventError);
    expect(await expectRejectedWithoutWrites('x'.repeat(256), [taskCreated()])).toBeInstanceOf(
      InvalidEventError,
    );
  });

  it('rejects data over the size limit with the sizes in the error', async () => {
    const big = {
      type: 'NodeProgress',
      data: { node: 'node-a', done: 1, total: 2, message: 'x'.repeat(3000) },
    } as NewEvent;
    const error = await expectRejectedWithoutWrites('t-existing', [nodeProgress('node-a', 2), big]);
    expect(error).toBeInstanceOf(EventTooLargeError);
    expect(error).toMatchObject({ index: 1, type: 'NodeProgress', limitBytes: 2048 });
    expect((error as EventTooLargeError).bytes).toBeGreaterThan(3000);
    expect((error as Error).message).toMatch(/over the limit of 2048/);
  });

  it('holds a TaskCreated listing 5,000 long node names under its own limit, and refuses one over it', async () => {
    const nodes = Array.from(
      { length: 5000 },
      (_, i) => `ip-10-0-${i >> 8}-${i & 255}.eu-west-1.compute.internal`,
    );
    const created = { type: 'TaskCreated', data: { userId: 'alice', action: 'cordon', nodes, params: {} } };
    expect(JSON.stringify(created.data).length).toBeGreaterThan(200_000);
    await expect(fixture.store.append('t-5000-nodes', [created as NewEvent])).resolves.toHaveLength(1);
    const [stored] = await fixture.store.readTask('t-5000-nodes');
    expect((stored?.data as { nodes: string[] }).nodes).toHaveLength(5000);
    const huge = {
      ...created,
      data: { ...created.data, params: { note: 'x'.repeat(DEFAULT_MAX_TASK_CREATED_BYTES) } },
    };
    const error = await expectRejectedWithoutWrites('t-huge', [huge as NewEvent]);
    expect(error).toMatchObject({ type: 'TaskCreated', limitBytes: DEFAULT_MAX_TASK_CREATED_BYTES });
  });

  it('appends data right at the limit', async () => {
    const overhead = JSON.stringify({ node: 'node-a', done: 1, total: 2, message: '' }).length;
    const exact = {
      type: 'NodeProgress',
      data: { node: 'node-a', done: 1, total: 2, message: 'y'.repeat(2048 - overhead) },
    };
    await expect(fixture.store.append('t-existing', [exact as NewEvent])).resolves.toHaveLength(1);
    expect(DEFAULT_MAX_EVENT_BYTES).toBe(65_536);
  });

  it('rejects appends to a task that was never created, and reads of it', async () => {
    const error = await expectRejectedWithoutWrites('t-unknown', [nodeProgress('node-a', 1)]);
    expect(error).toBeInstanceOf(UnknownTaskError);
    expect(error).toMatchObject({ taskId: 't-unknown' });
    await expect(fixture.store.readTask('t-unknown')).rejects.toBeInstanceOf(UnknownTaskError);
    expect(await fixture.store.getTask('t-unknown')).toBeNull();
  });

  it('rejects a stale expectedSeq, also for a task that does not exist yet', async () => {
    const [last] = await fixture.store
      .readTask('t-existing', { after: 0 })
      .then((events) => events.slice(-1));
    const stale = await expectRejectedWithoutWrites('t-existing', [nodeProgress('node-a', 9)], {
      expectedSeq: 1,
    });
    expect(stale).toBeInstanceOf(StaleSequenceError);
    expect(stale).toMatchObject({ expectedSeq: 1, actualSeq: last!.seq });
    const ahead = await expectRejectedWithoutWrites('t-not-yet', [taskCreated()], { expectedSeq: 3 });
    expect(ahead).toMatchObject({ expectedSeq: 3, actualSeq: 0 });
  });

  it('rejects events after the terminal one', async () => {
    const error = await expectRejectedWithoutWrites('t-ended', [nodeProgress('node-a', 1)]);
    expect(error).toBeInstanceOf(TaskAlreadyEndedError);
    expect(error).toMatchObject({ terminalType: 'TaskCompleted', terminalSeq: 2 });
  });

  it('rolls the whole append back when the hook fails', async () => {
    const before = await snapshotDatabase();
    const failure = new Error('notify failed');
    await expect(
      fixture.store.append('t-hooked', [taskCreated(), nodeProgress('node-a', 1)], {
        hook: async () => {
          throw failure;
        },
      }),
    ).rejects.toBe(failure);
    const after = (await snapshotDatabase()) as { events: unknown; tasks: unknown };
    expect(after.events).toEqual((before as typeof after).events);
    expect(after.tasks).toEqual((before as typeof after).tasks);
    await expect(fixture.store.readTask('t-hooked')).rejects.toBeInstanceOf(UnknownTaskError);
  });

  it('rejects bad read options', async () => {
    await expect(fixture.store.readTask('t-existing', { after: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(fixture.store.readAll({ afterPosition: 1.5 })).rejects.toBeInstanceOf(RangeError);
    await expect(
      fixture.store.listTasks({ before: { createdAt: 'soon', taskId: 't-existing' } }),
    ).rejects.toThrow(/before.createdAt must be an ISO-8601 time/);
  });
});

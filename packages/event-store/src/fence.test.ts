import {
  InMemoryEventStore,
  SupersededAttemptError,
  type EventStore,
  type NewEvent,
} from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStoreFixture, nodeProgress, taskCreated, type StoreFixture } from './testing/store-fixture.js';

/** Invariant 9 on both stores: a run's appends carry its attempt, and a later run fences them off. */

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture({ poolMax: 12 });
});

afterAll(async () => {
  await fixture?.close();
});

const started = (attempt: number): NewEvent => ({
  type: 'TaskStarted',
  data: { workerId: `w${attempt}`, attempt },
});
const nodeStarted = (node: string): NewEvent => ({ type: 'NodeStarted', data: { node, attempt: 1 } });

describe.each([
  ['PostgreSQL', () => fixture.store as EventStore],
  ['in memory', () => new InMemoryEventStore() as EventStore],
])('fenced appends (%s)', (_name, storeOf) => {
  it('refuses the appends of a superseded attempt, with the attempts in the error, and writes nothing', async () => {
    const store = storeOf();
    const taskId = `fence-${Math.random().toString(36).slice(2)}`;
    await store.append(taskId, [taskCreated('alice', ['n1'])]);
    await store.append(taskId, [started(1)], { fence: 1 });
    await store.append(taskId, [nodeStarted('n1')], { fence: 1 });
    // Attempt 2 takes over (the first worker stalled past its lock).
    await store.append(taskId, [started(2)], { fence: 2 });
    const refused = await store
      .append(taskId, [nodeProgress('n1', 1)], { fence: 1 })
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SupersededAttemptError);
    expect(refused).toMatchObject({ code: 'SUPERSEDED_ATTEMPT', fence: 1, currentAttempt: 2 });
    expect((refused as Error).message).toContain('attempt 2 has started');
    await store.append(taskId, [nodeProgress('n1', 1)], { fence: 2 });
    // Unfenced producers (a cancel request) are not runs and are not fenced.
    await store.append(taskId, [{ type: 'CancelRequested', data: { by: 'alice' } }]);
    const log = await store.readTask(taskId);
    expect(log.map((event) => event.type)).toEqual([
      'TaskCreated',
      'TaskStarted',
      'NodeStarted',
      'TaskStarted',
      'NodeProgress',
      'CancelRequested',
    ]);
  });

  it('lets only one of two runs with the same attempt start: the TaskStarted of an attempt already started is refused', async () => {
    const store = storeOf();
    const taskId = `fence-${Math.random().toString(36).slice(2)}`;
    await store.append(taskId, [taskCreated('alice', ['n1'])]);
    const outcomes = await Promise.allSettled([
      store.append(taskId, [started(1)], { fence: 1 }),
      store.append(taskId, [started(1)], { fence: 1 }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const rejected = outcomes.find((o) => o.status === 'rejected');
    expect(rejected?.status === 'rejected' && rejected.reason).toBeInstanceOf(SupersededAttemptError);
    expect((await store.readTask(taskId)).filter((event) => event.type === 'TaskStarted')).toHaveLength(1);
  });
});

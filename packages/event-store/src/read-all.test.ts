import type { StoredEvent } from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createStoreFixture,
  gate,
  nodeProgress,
  taskCreated,
  type StoreFixture,
} from './test-support/store-fixture.js';

/**
 * Invariant 4 (docs/invariants.md): positions are taken before commit, so concurrent writers commit
 * out of position order. A reader that resumes after the last position it saw
 * must still get every event exactly once.
 */

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture({ poolMax: 16 });
});

afterAll(async () => {
  await fixture?.close();
});

interface HeldWriter {
  taskId: string;
  /** Resolves with the positions once the writer is inside its hook (positions taken, not committed). */
  positions: Promise<number[]>;
  commit(): Promise<StoredEvent[]>;
}

/** Starts an append whose transaction stays open, in its hook, until commit() is called. */
function holdWriter(fixture: StoreFixture, taskId: string, events = 2): HeldWriter {
  const release = gate();
  let reportPositions!: (positions: number[]) => void;
  const positions = new Promise<number[]>((resolve) => {
    reportPositions = resolve;
  });
  const appended = fixture.store.append(
    taskId,
    Array.from({ length: events }, (_, i) => nodeProgress('node-a', i)),
    {
      hook: async (_tx, stored) => {
        reportPositions(stored.map((event) => event.position));
        await release.promise;
      },
    },
  );
  return {
    taskId,
    positions,
    commit: async () => {
      release.open();
      return appended;
    },
  };
}

/** A reader that polls readAll from its last position, as the polling transport does. */
function createReader(fixture: StoreFixture, start: number) {
  let cursor = start;
  const seen: StoredEvent[] = [];
  return {
    seen,
    async poll(): Promise<StoredEvent[]> {
      const page = await fixture.store.readAll({ afterPosition: cursor, limit: 1000 });
      for (const event of page) {
        expect(event.position).toBeGreaterThan(cursor);
        cursor = event.position;
      }
      seen.push(...page);
      return page;
    },
  };
}

async function committedMax(fixture: StoreFixture): Promise<number> {
  const { rows } = await fixture.pool.query<{ max: string | null }>(
    'SELECT max(position) AS max FROM events',
  );
  return Number(rows[0]!.max ?? 0);
}

describe('readAll with writers that commit out of order', () => {
  it('holds back later positions until every earlier one committed, then returns each once', async () => {
    const tasks = ['t-a', 't-b', 't-c'];
    for (const taskId of tasks) await fixture.store.append(taskId, [taskCreated()]);
    const reader = createReader(fixture, await fixture.store.headPosition());

    // Take positions in the order a < b < c, keeping every transaction open.
    const a = holdWriter(fixture, 't-a');
    const aPositions = await a.positions;
    const b = holdWriter(fixture, 't-b');
    const bPositions = await b.positions;
    const c = holdWriter(fixture, 't-c');
    await c.positions;
    expect(await reader.poll()).toEqual([]);

    // c commits first: a naive "position > cursor" reader would now see c and skip a and b later.
    const cEvents = await c.commit();
    expect(await committedMax(fixture)).toBe(cEvents.at(-1)!.position);
    expect(cEvents[0]!.position).toBeGreaterThan(Math.max(...aPositions, ...bPositions));
    expect(await reader.poll()).toEqual([]);

    // a commits: its events are readable, c's still not (b is below c and open).
    const aEvents = await a.commit();
    expect(await reader.poll()).toEqual(aEvents);

    const bEvents = await b.commit();
    expect(await reader.poll()).toEqual([...bEvents, ...cEvents]);
    expect(await reader.poll()).toEqual([]);
    expect(reader.seen).toEqual([...aEvents, ...bEvents, ...cEvents]);
  });

  it('gives a polling reader every event exactly once whatever the commit order', async () => {
    const writers = 12;
    const taskIds = Array.from({ length: writers }, (_, i) => `t-many-${i}`);
    for (const taskId of taskIds) await fixture.store.append(taskId, [taskCreated()]);
    const reader = createReader(fixture, await fixture.store.headPosition());

    // Two rounds per task, so that one task's later append may commit before another's earlier one.
    const held: HeldWriter[] = [];
    for (const taskId of taskIds) {
      const writer = holdWriter(fixture, taskId, 3);
      await writer.positions;
      held.push(writer);
    }
    // A fixed shuffle: the commit order is deterministic but far from position order.
    const order = [7, 2, 11, 0, 5, 9, 3, 10, 1, 8, 6, 4];
    const committed: StoredEvent[] = [];
    for (const index of order) {
      committed.push(...(await held[index]!.commit()));
      await reader.poll();
      // Nothing above the lowest open writer's positions may have been returned.
      const open = held.filter((_, i) => !order.slice(0, order.indexOf(index) + 1).includes(i));
      const lowestOpen = Math.min(
        ...(await Promise.all(open.map(async (w) => Math.min(...(await w.positions))))),
      );
      for (const event of reader.seen) expect(event.position).toBeLessThan(lowestOpen);
      // Meanwhile new appends keep coming and commit at once.
      committed.push(...(await fixture.store.append(taskIds[index]!, [nodeProgress('node-b', 1)])));
    }
    await reader.poll();
    await reader.poll();
    const byPosition = [...committed].sort((x, y) => x.position - y.position);
    expect(reader.seen).toEqual(byPosition);
    expect(new Set(reader.seen.map((event) => event.position)).size).toBe(committed.length);
  }, 120_000);

  it('does not hold readers back for a rolled-back append', async () => {
    await fixture.store.append('t-rollback', [taskCreated()]);
    const reader = createReader(fixture, await fixture.store.headPosition());
    await expect(
      fixture.store.append('t-rollback', [nodeProgress('node-a', 1)], {
        hook: async () => {
          throw new Error('hook failed');
        },
      }),
    ).rejects.toThrow('hook failed');
    const after = await fixture.store.append('t-rollback', [nodeProgress('node-a', 2)]);
    expect(after[0]!.seq).toBe(2);
    expect(await reader.poll()).toEqual(after);
  });
});

describe('readAll under free-running concurrent writers', () => {
  it('delivers every committed event exactly once, in position order, to a reader polling meanwhile', async () => {
    const writers = 8;
    const appendsPerWriter = 40;
    const taskIds = Array.from({ length: writers }, (_, i) => `t-free-run-${i}`);
    for (const taskId of taskIds) await fixture.store.append(taskId, [taskCreated()]);
    const reader = createReader(fixture, await fixture.store.headPosition());
    let writing = true;
    const polling = (async () => {
      while (writing) await reader.poll();
    })();
    const written = await Promise.all(
      taskIds.map(async (taskId) => {
        const events: StoredEvent[] = [];
        for (let i = 0; i < appendsPerWriter; i++) {
          events.push(
            ...(await fixture.store.append(taskId, [nodeProgress('node-a', i), nodeProgress('node-b', i)])),
          );
        }
        return events;
      }),
    );
    writing = false;
    await polling;
    await reader.poll();
    const all = written.flat().sort((x, y) => x.position - y.position);
    expect(all).toHaveLength(writers * appendsPerWriter * 2);
    expect(reader.seen).toEqual(all);
  }, 120_000);
});

describe('readAll with positions beyond 32 bits', () => {
  // The writer's floor is encoded in a two-integer advisory lock key: check the
  // sign bit of the low half and the carry into the high half.
  it.each([2 ** 31 - 2, 2 ** 32 - 2, 2 ** 40 + 2 ** 31 - 1])(
    'holds back a late commit around position %d',
    async (start) => {
      await fixture.pool.query(`SELECT setval('event_position_seq', $1)`, [start]);
      const taskIds = [`t-wide-a-${start}`, `t-wide-b-${start}`];
      for (const taskId of taskIds) await fixture.store.append(taskId, [taskCreated()]);
      const reader = createReader(fixture, await fixture.store.headPosition());
      const a = holdWriter(fixture, taskIds[0]!, 1);
      const [aPosition] = await a.positions;
      const bEvents = await fixture.store.append(taskIds[1]!, [
        nodeProgress('node-a', 1),
        nodeProgress('node-a', 2),
      ]);
      // The floor a registered (the sequence value before its nextval) decodes back exactly.
      expect(await fixture.store.headPosition()).toBe(aPosition! - 1);
      expect(await reader.poll()).toEqual([]);
      const aEvents = await a.commit();
      expect(await reader.poll()).toEqual([...aEvents, ...bEvents]);
      expect(aEvents[0]!.position).toBeGreaterThan(start);
    },
  );
});

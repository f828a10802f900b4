import { InvalidEventError, type StoredEvent } from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createStoreFixture,
  gate,
  nodeProgress,
  taskCreated,
  type StoreFixture,
} from './testing/store-fixture.js';

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture({ poolMax: 12 });
});

afterAll(async () => {
  await fixture?.close();
});

describe('appends to one task are serialized', () => {
  it('gives 100 concurrent appends the seqs after TaskCreated without a gap or a duplicate', async () => {
    const { store } = fixture;
    await store.append('t-one', [taskCreated('alice', ['n1'])]);
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.append('t-one', [nodeProgress('n1', i, 100)])),
    );
    const seqs = results.map((stored) => stored[0]!.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
    const log = await store.readTask('t-one');
    expect(log.map((event) => event.seq)).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
    // Within one task, positions follow seqs, so readAll delivers a task's events in order.
    for (let i = 1; i < log.length; i++) expect(log[i]!.position).toBeGreaterThan(log[i - 1]!.position);
    expect(await store.latestSeqs(['t-one'])).toEqual(new Map([['t-one', 101]]));
  }, 120_000);

  it('lets exactly one of several concurrent TaskCreated for a new task win', async () => {
    const { store } = fixture;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => store.append('t-race', [taskCreated()])),
    );
    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(InvalidEventError);
    }
    expect(await store.readTask('t-race')).toHaveLength(1);
  });
});

describe('appends to different tasks run concurrently', () => {
  it('completes appends to 49 tasks while another task holds its append transaction open', async () => {
    const { store, pool } = fixture;
    const held = gate();
    const inHook = gate();
    await store.append('t-held', [taskCreated()]);
    const heldAppend = store.append('t-held', [nodeProgress('node-a', 0)], {
      hook: async () => {
        inHook.open();
        await held.promise;
      },
    });
    await inHook.promise;

    // A second append to the held task waits for its row lock ...
    const queued = store.append('t-held', [nodeProgress('node-a', 1)]);
    await vi.waitFor(
      async () => {
        const { rows } = await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'`,
        );
        expect(rows[0]!.n).toBe(1);
      },
      { timeout: 20_000, interval: 50 },
    );

    // ... while 49 other tasks append, all at once, and commit.
    const others = await Promise.all(
      Array.from({ length: 49 }, (_, i) =>
        store.append(`t-free-${i}`, [taskCreated(), nodeProgress('node-a', 1), nodeProgress('node-b', 1)]),
      ),
    );
    expect(others.every((stored) => stored.length === 3)).toBe(true);
    const seqs = await store.latestSeqs(others.map((_, i) => `t-free-${i}`));
    expect(seqs.size).toBe(49);
    expect([...seqs.values()].every((seq) => seq === 3)).toBe(true);
    // The held append has not committed yet.
    expect(await store.latestSeqs(['t-held'])).toEqual(new Map([['t-held', 1]]));

    held.open();
    const first: StoredEvent[] = await heldAppend;
    const second = await queued;
    expect(first[0]!.seq).toBe(2);
    expect(second[0]!.seq).toBe(3);
  }, 120_000);
});

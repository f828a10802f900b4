import { describe, expect, it } from 'vitest';
import { TaskOwnerCache } from './task-owner-cache.js';

/** An owner table in memory that counts the reads made of it. */
function ownerTable(owners: Record<string, string>, former: Record<string, string> = {}) {
  const reads: string[] = [];
  return {
    reads,
    readOwner: (taskId: string) => {
      reads.push(taskId);
      return Promise.resolve(owners[taskId] ?? null);
    },
    readFormerOwner: (taskId: string) => Promise.resolve(former[taskId] ?? null),
  };
}

describe('TaskOwnerCache', () => {
  it('reads a task once, and an unknown id once per unknownTtlMs', async () => {
    let now = 0;
    const table = ownerTable({ t1: 'alice' });
    const cache = new TaskOwnerCache({ ...table, unknownTtlMs: 1000, now: () => now });
    const [a, b] = await Promise.all([cache.lookup('t1'), cache.lookup('t1')]);
    expect(a).toEqual({ state: 'exists', ownerId: 'alice' });
    expect(b).toEqual(a);
    for (let i = 0; i < 50; i++) expect(await cache.lookup('nope')).toEqual({ state: 'unknown' });
    expect(table.reads).toEqual(['t1', 'nope']);
    now = 1001;
    await cache.lookup('nope');
    await cache.lookup('t1');
    expect(table.reads).toEqual(['t1', 'nope', 'nope']);
  });

  it('says gone for a task only the audit trail remembers', async () => {
    const cache = new TaskOwnerCache(ownerTable({}, { old: 'bob' }));
    expect(await cache.lookup('old')).toEqual({ state: 'gone', ownerId: 'bob' });
  });

  it('stays within its byte budget, forgetting the least recently used first', async () => {
    const owners = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`task-${i}`, `user-${i}`]));
    const table = ownerTable(owners);
    const cache = new TaskOwnerCache({ ...table, maxBytes: 20_000 });
    await cache.lookup('task-0');
    for (let i = 1; i < 1000; i++) {
      await cache.lookup(`task-${i}`);
      await cache.lookup('task-0'); // kept in use
      expect(cache.bytes).toBeLessThanOrEqual(20_000);
    }
    expect(cache.size).toBeLessThan(200);
    const readsBefore = table.reads.length;
    await cache.lookup('task-0');
    await cache.lookup('task-999');
    expect(table.reads.length).toBe(readsBefore);
    await cache.lookup('task-1');
    expect(table.reads.length).toBe(readsBefore + 1);
  });
});

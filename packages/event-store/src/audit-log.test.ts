import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog } from './audit-log.js';
import { createStoreFixture, taskCreated, type StoreFixture } from './test-support/store-fixture.js';

let fixture: StoreFixture;
let audit: AuditLog;

beforeAll(async () => {
  fixture = await createStoreFixture();
  audit = createAuditLog({ pool: fixture.pool });
});

afterAll(async () => {
  await fixture?.close();
});

describe('audit log', () => {
  it('records requests and lists them newest first, filtered by user, action, node and time, paged', async () => {
    const before = new Date(Date.now() - 1000).toISOString();
    await audit.record({
      kind: 'request',
      userId: 'filter-alice',
      role: 'operator',
      clientAddress: '10.0.0.7',
      action: 'cordon',
      taskId: 'audit-t1',
      nodes: ['node-x', 'node-y'],
      reason: 'kernel upgrade',
      params: {},
      decision: 'allowed',
      rule: 'policy.cordonRole',
    });
    await audit.record({
      kind: 'request',
      userId: 'filter-alice',
      role: 'operator',
      action: 'drain',
      nodes: ['node-y'],
      decision: 'denied',
      rule: 'policy.drainRole',
      message: 'role operator may not drain',
    });
    await audit.record({ kind: 'request', userId: 'filter-bob', action: 'cordon', nodes: ['node-z'] });

    const alices = await audit.list({ userId: 'filter-alice' });
    expect(alices.entries.map((e) => e.action)).toEqual(['drain', 'cordon']);
    expect(alices.entries[1]).toMatchObject({
      clientAddress: '10.0.0.7',
      nodes: ['node-x', 'node-y'],
      nodeCount: 2,
      reason: 'kernel upgrade',
      decision: 'allowed',
      taskId: 'audit-t1',
    });
    expect((await audit.list({ node: 'node-y' })).entries).toHaveLength(2);
    expect((await audit.list({ node: 'node-z', action: 'cordon' })).entries[0]?.userId).toBe('filter-bob');
    expect((await audit.list({ since: before, userId: 'filter-bob' })).entries).toHaveLength(1);
    expect((await audit.list({ until: before, userId: 'filter-bob' })).entries).toHaveLength(0);

    const first = await audit.list({ userId: 'filter-alice', limit: 1 });
    expect(first.entries.map((e) => e.action)).toEqual(['drain']);
    expect(first.nextCursor).not.toBeNull();
    const second = await audit.list({ userId: 'filter-alice', limit: 1, before: first.nextCursor! });
    expect(second.entries.map((e) => e.action)).toEqual(['cordon']);
    expect(second.nextCursor).toBeNull();
    expect(await audit.acceptedTaskOwner('audit-t1')).toBe('filter-alice');
    expect(await audit.acceptedTaskOwner('audit-none')).toBeNull();
  });

  it('appends the outcome per node when a task ends, in the same transaction as the terminal event', async () => {
    const taskId = 'audit-outcome';
    await fixture.store.append(taskId, [taskCreated('olga', ['node-a', 'node-b', 'node-c'])]);
    await fixture.store.append(taskId, [
      { type: 'NodeSucceeded', data: { node: 'node-a' } },
      { type: 'NodeFailed', data: { node: 'node-b', error: 'eviction refused', retryable: false } },
      { type: 'CancelRequested', data: { by: 'olga' } },
      { type: 'TaskCancelled', data: { succeeded: 1, failed: 1, skipped: 0, notStarted: ['node-c'] } },
    ]);
    const { entries } = await audit.list({ taskId });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      kind: 'outcome',
      userId: 'olga',
      action: 'cordon',
      status: 'cancelled',
      nodes: ['node-a', 'node-b', 'node-c'],
      outcome: {
        'node-a': { status: 'succeeded' },
        'node-b': { status: 'failed', error: 'eviction refused' },
        'node-c': { status: 'not started' },
      },
    });
  });

  it('refuses updates, and retention deletes only rows older than its age', async () => {
    await expect(fixture.pool.query(`UPDATE audit_log SET user_id = 'mallory'`)).rejects.toThrow(
      /append-only/,
    );
    await fixture.pool.query(
      `INSERT INTO audit_log (kind, user_id, action, time) VALUES ('request', 'ancient', 'cordon', now() - interval '400 days')`,
    );
    const total = (await audit.list({ limit: 1000 })).entries.length;
    expect(await audit.deleteExpired(365 * 24 * 3600 * 1000)).toBe(1);
    const after = (await audit.list({ limit: 1000 })).entries;
    expect(after).toHaveLength(total - 1);
    expect(after.some((e) => e.userId === 'ancient')).toBe(false);
  });
});

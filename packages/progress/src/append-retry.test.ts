import { describe, expect, it } from 'vitest';
import { AppendRetriesExhaustedError, retryingAppend, type AppendFunction } from './append-retry.js';
import { InvalidEventError } from './errors.js';
import { InMemoryEventStore } from './in-memory-event-store.js';
import { isDatabaseUnavailable } from './lib.js';
import type { AppendOptions } from './store.js';
import { ev } from './testing/stored-events.js';

/** What node-postgres throws when the server goes away mid-query. */
const connectionLost = (): Error => new Error('Connection terminated unexpectedly');
const refused = (): Error =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
const fast = { backoff: { minDelayMs: 1, maxDelayMs: 2 } };

describe('retryingAppend', () => {
  it('does not write twice a batch whose commit went through but whose acknowledgement was lost', async () => {
    const store = new InMemoryEventStore();
    await store.append('t1', [ev.created(['n1'])]);
    const keys: (string | undefined)[] = [];
    let lose = 2;
    // The store commits; the reply is lost on the way back, twice.
    const lossy: AppendFunction<AppendOptions> = async (taskId, events, options) => {
      keys.push(options?.idempotencyKey);
      const stored = await store.append(taskId, events, options);
      if (lose-- > 0) throw connectionLost();
      return stored;
    };
    const stored = await retryingAppend(lossy, fast)('t1', [ev.started(), ev.nodeStarted('n1')]);
    expect(stored.map((event) => event.seq)).toEqual([2, 3]);
    expect((await store.readTask('t1')).map((event) => event.type)).toEqual([
      'TaskCreated',
      'TaskStarted',
      'NodeStarted',
    ]);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('retries while the database refuses connections, then appends once', async () => {
    const store = new InMemoryEventStore();
    await store.append('t2', [ev.created(['n1'])]);
    let down = 3;
    const flaky: AppendFunction<AppendOptions> = (taskId, events, options) =>
      down-- > 0 ? Promise.reject(refused()) : store.append(taskId, events, options);
    await retryingAppend(flaky, fast)('t2', [ev.started()], { idempotencyKey: 'mine' });
    expect(await store.readTask('t2')).toHaveLength(2);
    // The caller's key was kept: the batch is known by it.
    await expect(store.append('t2', [ev.started()], { idempotencyKey: 'mine' })).resolves.toHaveLength(1);
    expect(await store.readTask('t2')).toHaveLength(2);
  });

  it('does not retry a refusal: bad input or a rule of the log fails at once', async () => {
    let tries = 0;
    const invalid: AppendFunction<AppendOptions> = () => {
      tries += 1;
      return Promise.reject(new InvalidEventError('bad'));
    };
    await expect(retryingAppend(invalid, fast)('t3', [ev.started()])).rejects.toBeInstanceOf(
      InvalidEventError,
    );
    expect(tries).toBe(1);
  });

  it('gives up when the budget is spent, with the tries and the last error', async () => {
    let clock = 0;
    let tries = 0;
    const down: AppendFunction<AppendOptions> = () => {
      tries += 1;
      clock += 400;
      return Promise.reject(refused());
    };
    const error = await retryingAppend(down, { ...fast, budgetMs: 1000, now: () => clock })('t4', [
      ev.started(),
    ]).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppendRetriesExhaustedError);
    expect(error).toMatchObject({ code: 'APPEND_RETRIES_EXHAUSTED', taskId: 't4', tries: 3 });
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect(isDatabaseUnavailable((error as Error).cause)).toBe(true);
    expect(tries).toBe(3);
  });
});

describe('isDatabaseUnavailable', () => {
  it('tells a database that is away from one that refuses', () => {
    expect(isDatabaseUnavailable(refused())).toBe(true);
    expect(isDatabaseUnavailable(connectionLost())).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(
      true,
    );
    expect(isDatabaseUnavailable(new Error('wrapped', { cause: refused() }))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isDatabaseUnavailable(new InvalidEventError('bad'))).toBe(false);
  });
});

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IdempotencyKeyReusedError,
  InvalidEventError,
  StaleSequenceError,
  TaskAlreadyEndedError,
  UnknownTaskError,
} from '../errors.js';
import { EventTooLargeError } from '../event-log-rules.js';
import type { NewEvent } from '../events.js';
import type { EventStore } from '../store.js';
import { ev } from './stored-events.js';

/** A store under test and how to release it. */
export interface EventStoreUnderTest {
  store: EventStore;
  close(): Promise<void>;
}

/** How the contract gets a store: one per suite, empty or not (every test uses its own task ids). */
export interface EventStoreContractOptions {
  /** Creates the store with these limits; the PostgreSQL store over a fresh database, for example. */
  create(limits: { maxEventBytes: number; pageSize: number }): Promise<EventStoreUnderTest>;
}

const MAX_EVENT_BYTES = 2048;
const PAGE_SIZE = 3;

/**
 * The behaviour every EventStore shares, whatever keeps the log: seqs without
 * gaps, `expectedSeq`, the log's rules (TaskCreated first, nothing after the
 * terminal event), validation and the size limit before anything is written,
 * a failing hook rolling the append back, and paging. Each store package
 * runs it against its real store.
 */
export function eventStoreContract(name: string, options: EventStoreContractOptions): void {
  describe(`EventStore contract: ${name}`, () => {
    let target: EventStoreUnderTest;
    const store = (): EventStore => target.store;
    const taskId = (): string => `contract-${randomUUID()}`;
    const created = ev.created(['n1', 'n2']);

    beforeAll(async () => {
      target = await options.create({ maxEventBytes: MAX_EVENT_BYTES, pageSize: PAGE_SIZE });
    });

    afterAll(async () => {
      await target?.close();
    });

    it('assigns seqs 2..31 without gap or duplicate to 30 concurrent appends after TaskCreated', async () => {
      const id = taskId();
      await store().append(id, [created]);
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => store().append(id, [ev.nodeProgress('n1', i, 30)])),
      );
      const seqs = results.flat().map((event) => event.seq);
      expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 2));
      const latest = await store().latestSeqs([id]);
      expect(latest.get(id)).toBe(31);
    });

    it('rejects a stale expectedSeq with StaleSequenceError and writes nothing', async () => {
      const id = taskId();
      await store().append(id, [created], { expectedSeq: 0 });
      await store().append(id, [ev.started()], { expectedSeq: 1 });
      const error = await store()
        .append(id, [ev.nodeStarted('n1')], { expectedSeq: 1 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StaleSequenceError);
      expect(error).toMatchObject({ expectedSeq: 1, actualSeq: 2, code: 'STALE_SEQUENCE' });
      expect(await store().readTask(id)).toHaveLength(2);
      const ahead = await store()
        .append(taskId(), [created], { expectedSeq: 3 })
        .catch((e: unknown) => e);
      expect(ahead).toMatchObject({ expectedSeq: 3, actualSeq: 0 });
    });

    it('refuses anything after the terminal event, and a terminal event before the end of a batch', async () => {
      const id = taskId();
      await store().append(id, [created, ev.started()]);
      await expect(store().append(id, [ev.completed(0, 0), ev.nodeStarted('n1')])).rejects.toBeInstanceOf(
        TaskAlreadyEndedError,
      );
      await expect(store().append(id, [ev.completed(0, 0), ev.failed()])).rejects.toMatchObject({
        terminalType: 'TaskCompleted',
        terminalSeq: 3,
      });
      expect(await store().readTask(id)).toHaveLength(2);
      await store().append(id, [ev.cancelled(0, 0, 0)]);
      const error = await store()
        .append(id, [ev.failed()])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskAlreadyEndedError);
      expect(String(error)).toContain('TaskCancelled at seq 3');
      expect(await store().readTask(id)).toHaveLength(3);
    });

    it('names bad input and writes nothing of the batch', async () => {
      const id = taskId();
      await store().append(id, [created]);
      const bad = { type: 'NodeProgress', data: { node: 'n1', done: -1, total: 2 } } as unknown as NewEvent;
      const error = await store()
        .append(id, [ev.started(), bad])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidEventError);
      expect(String(error)).toContain('event 1 (NodeProgress)');
      const unknownType = { type: 'NodeExploded', data: {} } as unknown as NewEvent;
      await expect(store().append(id, [unknownType])).rejects.toThrow(/unknown type "NodeExploded"/);
      await expect(store().append(id, [created])).rejects.toThrow(
        /TaskCreated must be the task's first event/,
      );
      await expect(store().append(id, [{ ...ev.started(), time: 'yesterday' }])).rejects.toBeInstanceOf(
        InvalidEventError,
      );
      await expect(store().append('', [created])).rejects.toThrow(/task id "" must be/);
      // Bad data is named before the log's rules are looked at.
      await expect(store().append(taskId(), [bad])).rejects.toBeInstanceOf(InvalidEventError);
      expect(await store().readTask(id)).toHaveLength(1);
    });

    it('refuses data over the size limit with the sizes, and takes data right at it', async () => {
      const id = taskId();
      await store().append(id, [created]);
      const message = (length: number): NewEvent => ({
        type: 'NodeProgress',
        data: { node: 'n1', done: 1, total: 2, message: 'x'.repeat(length) },
      });
      const error = await store()
        .append(id, [ev.started(), message(3000)])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventTooLargeError);
      expect(error).toMatchObject({ index: 1, type: 'NodeProgress', limitBytes: MAX_EVENT_BYTES });
      expect(await store().readTask(id)).toHaveLength(1);
      const overhead = JSON.stringify({ node: 'n1', done: 1, total: 2, message: '' }).length;
      await expect(store().append(id, [message(MAX_EVENT_BYTES - overhead)])).resolves.toHaveLength(1);
    });

    it('a task starts with TaskCreated: other events for an unknown task are refused, and reads of it', async () => {
      const id = taskId();
      await expect(store().append(id, [ev.started()])).rejects.toBeInstanceOf(UnknownTaskError);
      await expect(store().readTask(id)).rejects.toBeInstanceOf(UnknownTaskError);
    });

    it('runs the hook with the stored events; a failing hook rolls the append back', async () => {
      const id = taskId();
      const seen: number[][] = [];
      await store().append(id, [created], {
        hook: (_tx, events) => Promise.resolve(void seen.push(events.map((event) => event.seq))),
      });
      expect(seen).toEqual([[1]]);
      await expect(
        store().append(id, [ev.started()], { hook: () => Promise.reject(new Error('NOTIFY failed')) }),
      ).rejects.toThrow('NOTIFY failed');
      expect(await store().readTask(id)).toHaveLength(1);
      const [next] = await store().append(id, [ev.started()]);
      expect(next?.seq).toBe(2);
    });

    it('writes a batch once per idempotency key: a retried append returns what the first try stored', async () => {
      const id = taskId();
      const first = await store().append(id, [created], { idempotencyKey: 'b1', expectedSeq: 0 });
      // The retry of an acknowledgement that was lost: same key, same events, the same expectedSeq.
      const again = await store().append(id, [created], { idempotencyKey: 'b1', expectedSeq: 0 });
      expect(again).toEqual(first);
      const batch = [ev.started(), ev.nodeStarted('n1')];
      const stored = await store().append(id, batch, { idempotencyKey: 'b2' });
      expect(stored.map((event) => event.seq)).toEqual([2, 3]);
      await store().append(id, [ev.nodeProgress('n1', 1, 2)]);
      expect(await store().append(id, batch, { idempotencyKey: 'b2' })).toEqual(stored);
      // A terminal event retried after it committed is answered, not refused as a second end.
      const ended = await store().append(id, [ev.failed()], { idempotencyKey: 'end', expectedSeq: 4 });
      expect(await store().append(id, [ev.failed()], { idempotencyKey: 'end', expectedSeq: 4 })).toEqual(
        ended,
      );
      expect((await store().readTask(id, { after: 3 })).map((event) => event.type)).toEqual([
        'NodeProgress',
        'TaskFailed',
      ]);
      expect(await store().latestSeqs([id])).toEqual(new Map([[id, 5]]));
    });

    it('scopes idempotency keys to a task, refuses a key reused for other events, and checks the key', async () => {
      const [a, b] = [taskId(), taskId()];
      await store().append(a, [created, ev.started()], { idempotencyKey: 'k' });
      await expect(store().append(b, [created, ev.started()], { idempotencyKey: 'k' })).resolves.toHaveLength(
        2,
      );
      const reused = await store()
        .append(a, [ev.nodeStarted('n1')], { idempotencyKey: 'k' })
        .catch((e: unknown) => e);
      expect(reused).toBeInstanceOf(IdempotencyKeyReusedError);
      expect(reused).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', idempotencyKey: 'k' });
      await expect(store().append(a, [ev.nodeStarted('n1')], { idempotencyKey: '' })).rejects.toThrow(
        /idempotencyKey must be a string of 1 to 200 characters/,
      );
      await expect(
        store().append(a, [ev.nodeStarted('n1')], { idempotencyKey: 'x'.repeat(201) }),
      ).rejects.toBeInstanceOf(InvalidEventError);
      expect(await store().readTask(a)).toHaveLength(2);
    });

    it('lets one of two concurrent appends with the same idempotency key write, and gives both its events', async () => {
      const id = taskId();
      await store().append(id, [created]);
      const [x, y] = await Promise.all([
        store().append(id, [ev.started()], { idempotencyKey: 'same' }),
        store().append(id, [ev.started()], { idempotencyKey: 'same' }),
      ]);
      expect(x).toEqual(y);
      expect(await store().readTask(id)).toHaveLength(2);
    });

    it('readAllPage names the highest committed position it holds back behind an append in flight', async () => {
      const [slow, fast] = [taskId(), taskId()];
      await store().append(slow, [created]);
      await store().append(fast, [created]);
      const head = await store().headPosition();
      let entered!: () => void;
      const inHook = new Promise<void>((resolve) => (entered = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const slowAppend = store().append(slow, [ev.started()], {
        hook: () => {
          entered();
          return released;
        },
      });
      await inHook;
      const [fastEvent] = await store().append(fast, [ev.started()]);
      // The fast event committed, but the slow append below it may still commit.
      expect(await store().readAllPage({ afterPosition: head })).toEqual({
        events: [],
        heldBackTo: fastEvent!.position,
      });
      expect(await store().readAll({ afterPosition: head })).toEqual([]);
      release();
      const [slowEvent] = await slowAppend;
      expect(await store().readAllPage({ afterPosition: head })).toEqual({
        events: [slowEvent, fastEvent],
        heldBackTo: null,
      });
      expect(await store().readAllPage({ afterPosition: fastEvent!.position })).toEqual({
        events: [],
        heldBackTo: null,
      });
    });

    it('readTask pages by seq; latestSeqs answers for known tasks only; bad paging is a RangeError', async () => {
      const [a, b] = [taskId(), taskId()];
      await store().append(a, [created, ...Array.from({ length: 9 }, () => ev.nodeProgress('n1', 1, 2))]);
      await store().append(b, [created]);
      expect((await store().readTask(a)).map((e) => e.seq)).toEqual([1, 2, 3]);
      expect((await store().readTask(a, { after: 8, limit: 5 })).map((e) => e.seq)).toEqual([9, 10]);
      expect(await store().readTask(a, { after: 10 })).toEqual([]);
      // A limit above the page size gets a page.
      expect(await store().readTask(a, { limit: 100 })).toHaveLength(PAGE_SIZE);
      await expect(store().readTask(a, { after: -1 })).rejects.toBeInstanceOf(RangeError);
      await expect(store().readTask(a, { limit: 0 })).rejects.toBeInstanceOf(RangeError);
      await expect(store().readAll({ afterPosition: 1.5 })).rejects.toBeInstanceOf(RangeError);
      await expect(store().readAllPage({ afterPosition: -1 })).rejects.toBeInstanceOf(RangeError);
      expect(await store().latestSeqs([a, b, taskId()])).toEqual(
        new Map([
          [a, 10],
          [b, 1],
        ]),
      );
    });
  });
}

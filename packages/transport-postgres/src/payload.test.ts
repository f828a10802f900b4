import { describe, expect, it } from 'vitest';
import { HintKey } from '@nodebatch/progress';
import type { StoredEvent } from '@nodebatch/progress';
import {
  MAX_PAYLOAD_BYTES,
  decodeNotification,
  encodeEvents,
  encodeProbe,
  encodeTransaction,
  peekPayload,
} from './payload.js';

function progress(seq: number, message = '', taskId = 'task-1'): StoredEvent {
  return {
    taskId,
    seq,
    position: 100 + seq,
    type: 'NodeProgress',
    time: '2026-01-01T00:00:00.000Z',
    data: { node: 'node-a', done: seq, total: 10, message },
  };
}

function roundTrip(payload: string) {
  const peeked = peekPayload(payload);
  if ('error' in peeked) throw new Error(peeked.error);
  if (peeked.entries.length !== 1) throw new Error(`${peeked.entries.length} notifications in one payload`);
  const [entry] = peeked.entries;
  if ('error' in entry!) throw new Error(entry.error);
  return decodeNotification(entry!.json);
}

/** Every notification of a payload, decoded. */
function entriesOf(payload: string) {
  const peeked = peekPayload(payload);
  if ('error' in peeked) throw new Error(peeked.error);
  return peeked.entries.map((entry) => ('error' in entry ? entry : decodeNotification(entry.json)));
}

describe('encodeEvents', () => {
  it('carries small batches whole, without repeating the task id per event', () => {
    const events = [progress(3), progress(4)];
    const payload = encodeEvents(events);
    expect(payload.match(/task-1/g)).toHaveLength(1);
    expect(roundTrip(payload)).toEqual({
      ok: true,
      notification: { kind: 'events', taskId: 'task-1', seq: 4, events },
    });
  });

  it('sends a reference when the payload would reach 8000 bytes, counting bytes not characters', () => {
    // 3000 three-byte characters: 3000 UTF-16 units but 9000 bytes.
    const payload = encodeEvents([progress(5), progress(6, '€'.repeat(3000))]);
    expect(JSON.parse(payload)).toEqual({ taskId: 'task-1', seq: 6, from: 5 });
    expect(roundTrip(payload)).toEqual({
      ok: true,
      notification: { kind: 'reference', taskId: 'task-1', seq: 6, from: 5 },
    });
  });

  it('keeps the largest payload that fits', () => {
    const probeSize = Buffer.byteLength(encodeEvents([progress(1, '')]));
    const fits = progress(1, 'x'.repeat(MAX_PAYLOAD_BYTES - probeSize));
    expect(Buffer.byteLength(encodeEvents([fits]))).toBe(MAX_PAYLOAD_BYTES);
    expect(JSON.parse(encodeEvents([fits]))).toHaveProperty('events');
    const tooBig = progress(1, 'x'.repeat(MAX_PAYLOAD_BYTES - probeSize + 1));
    expect(JSON.parse(encodeEvents([tooBig]))).not.toHaveProperty('events');
  });
});

describe('encodeEvents with a hint key', () => {
  const key = new HintKey('payload-test-hint-key-0123456789abcdef');

  it('carries the MAC of the events it sends, and the receiver gets it back with them', () => {
    const events = [progress(3), progress(4)];
    const result = roundTrip(encodeEvents(events, { key }));
    if (!result.ok || result.notification.kind !== 'events') throw new Error('expected events');
    const { mac, ...rest } = result.notification;
    expect(rest).toEqual({ kind: 'events', taskId: 'task-1', seq: 4, events });
    expect(key.authenticate({ taskId: 'task-1', seq: 4, events: rest.events }, mac)).toBe('verified');
  });

  it('counts the MAC within the 8000-byte limit, and sends a reference without one above it', () => {
    const probeSize = Buffer.byteLength(encodeEvents([progress(1, '')], { key }));
    const fits = progress(1, 'x'.repeat(MAX_PAYLOAD_BYTES - probeSize));
    const largest = encodeEvents([fits], { key });
    expect(Buffer.byteLength(largest)).toBe(MAX_PAYLOAD_BYTES);
    expect(JSON.parse(largest)).toHaveProperty('mac');
    const tooBig = progress(1, 'x'.repeat(MAX_PAYLOAD_BYTES - probeSize + 1));
    expect(JSON.parse(encodeEvents([tooBig], { key }))).toEqual({ taskId: 'task-1', seq: 1, from: 1 });
  });

  it('leaves the MAC out without a key, and a receiver without one ignores it', () => {
    expect(JSON.parse(encodeEvents([progress(1)]))).not.toHaveProperty('mac');
    const result = roundTrip(encodeEvents([progress(1)], { key }));
    expect(result).toMatchObject({ ok: true, notification: { kind: 'events', events: [progress(1)] } });
  });
});

describe('encodeTransaction', () => {
  const tasks = (count: number, message = '') =>
    Array.from({ length: count }, (_, task) => [
      progress(1, message, `task-${task}`),
      progress(2, message, `task-${task}`),
    ]).flat();

  it('sends one notification per task, each readable by every version, unless asked to combine', () => {
    const events = tasks(3);
    const payloads = encodeTransaction(events);
    expect(payloads).toEqual([0, 1, 2].map((task) => encodeEvents(events.slice(task * 2, task * 2 + 2))));
  });

  it("combines a transaction's tasks into one notification that holds each task's events", () => {
    const events = tasks(3);
    const payloads = encodeTransaction(events, { combine: true });
    expect(payloads).toHaveLength(1);
    expect(entriesOf(payloads[0]!)).toEqual(
      [0, 1, 2].map((task) => ({
        ok: true,
        notification: {
          kind: 'events',
          taskId: `task-${task}`,
          seq: 2,
          events: events.slice(task * 2, task * 2 + 2),
        },
      })),
    );
  });

  it('sends one task in the plain format even when asked to combine', () => {
    const events = tasks(1);
    expect(encodeTransaction(events, { combine: true })).toEqual([encodeEvents(events)]);
  });

  it('fills each combined notification up to the limit, and no further', () => {
    const events = tasks(40, 'x'.repeat(300));
    const payloads = encodeTransaction(events, { combine: true });
    const single = Buffer.byteLength(encodeEvents(events.slice(0, 2)));
    const perPayload = Math.floor((MAX_PAYLOAD_BYTES - '{"tasks":[]}'.length + 1) / (single + 1));
    expect(payloads).toHaveLength(Math.ceil(40 / perPayload));
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    // Each but the last is full: one more entry would not have fitted.
    for (const payload of payloads.slice(0, -1)) {
      expect(Buffer.byteLength(payload) + single + 1).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    }
    const announced = payloads.flatMap(entriesOf).map((entry) => ('ok' in entry && entry.ok ? entry : null));
    expect(
      announced.map((entry) => entry?.notification.kind === 'events' && entry.notification.taskId),
    ).toEqual(Array.from({ length: 40 }, (_, task) => `task-${task}`));
  });

  it('sends a task too large to carry as a reference inside the combined notification', () => {
    const events = [progress(1, '', 'small'), progress(7, '€'.repeat(3000), 'large')];
    const payloads = encodeTransaction(events, { combine: true });
    expect(payloads).toHaveLength(1);
    expect(entriesOf(payloads[0]!)).toMatchObject([
      { ok: true, notification: { kind: 'events', taskId: 'small' } },
      { ok: true, notification: { kind: 'reference', taskId: 'large', seq: 7, from: 7 } },
    ]);
  });

  it('signs each task of a combined notification with its own MAC', () => {
    const key = new HintKey('payload-test-hint-key-0123456789abcdef');
    const events = tasks(2);
    const [payload] = encodeTransaction(events, { combine: true, key });
    for (const entry of entriesOf(payload!)) {
      if (!('ok' in entry) || !entry.ok || entry.notification.kind !== 'events')
        throw new Error('expected events');
      const { taskId, seq, events: carried, mac } = entry.notification;
      expect(key.authenticate({ taskId, seq, events: carried }, mac)).toBe('verified');
    }
  });
});

describe('decodeNotification', () => {
  it('recognises probes', () => {
    expect(roundTrip(encodeProbe('abc'))).toEqual({
      ok: true,
      notification: { kind: 'probe', probe: 'abc' },
    });
  });

  it.each([
    ['garbage', 'not JSON'],
    ['42', 'not a JSON object'],
    ['null', 'not a JSON object'],
  ])('rejects %s before any schema work', (payload, error) => {
    expect(peekPayload(payload)).toEqual({ error });
  });

  it.each([
    ['{"tasks":[]}', 'an empty list'],
    ['{"tasks":{}}', 'no list'],
    ['{"tasks":[{"taskId":"t","seq":1,"from":1}],"seq":1}', 'another key beside it'],
  ])('rejects a combined notification with %s', (payload) => {
    expect(peekPayload(payload)).toHaveProperty('error');
  });

  it('rejects a probe or a nested combination inside a combined notification, and keeps its other tasks', () => {
    const entries = entriesOf(
      JSON.stringify({ tasks: [{ probe: 'p' }, { tasks: [] }, { taskId: 't', seq: 2, from: 1 }] }),
    );
    expect(entries).toEqual([
      { error: 'tasks[0] has no taskId' },
      { error: 'tasks[1] has no taskId' },
      { ok: true, notification: { kind: 'reference', taskId: 't', seq: 2, from: 1 } },
    ]);
  });

  it('rejects envelopes of another shape', () => {
    for (const json of [
      {},
      { taskId: 't' },
      { taskId: 't', seq: 0, from: 1 },
      { probe: '' },
      { taskId: 't', seq: 2, from: 3 },
    ]) {
      expect(decodeNotification(json).ok).toBe(false);
    }
  });

  it('rejects events that fail their schema but keeps the task and seq it announced', () => {
    const result = decodeNotification({
      taskId: 't',
      seq: 2,
      events: [
        { seq: 2, position: 1, type: 'NodeProgress', time: 'x', data: { node: 'n', done: -1, total: 1 } },
      ],
    });
    expect(result).toMatchObject({ ok: false, taskId: 't', seq: 2 });
  });

  it('rejects events that do not end at the announced seq or skip one', () => {
    const [a, b] = [progress(1), progress(3)].map(({ taskId: _t, ...rest }) => rest);
    expect(decodeNotification({ taskId: 'task-1', seq: 3, events: [a, b] }).ok).toBe(false);
    expect(decodeNotification({ taskId: 'task-1', seq: 2, events: [a] }).ok).toBe(false);
  });
});

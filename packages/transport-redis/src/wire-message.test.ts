import { HintKey } from '@nodebatch/progress';
import type { StoredEvent } from '@nodebatch/progress';
import { describe, expect, it } from 'vitest';
import {
  decodeEnvelope,
  decodeEvents,
  decodeTaskEnvelope,
  encodeAppend,
  encodeProbe,
} from './wire-message.js';

function progress(taskId: string, seq: number, message = ''): StoredEvent {
  return {
    taskId,
    seq,
    position: 1000 + seq,
    type: 'NodeProgress',
    time: '2026-01-01T00:00:00.000Z',
    data: { node: 'node-a', done: seq, total: 10, message },
  };
}

function decodeAll(message: string) {
  const envelope = decodeEnvelope(message);
  if (!envelope.ok) throw new Error(envelope.problem);
  if (envelope.value.kind !== 'events') return envelope.value;
  const events = decodeEvents(envelope.value);
  if (!events.ok) throw new Error(events.problem);
  return { ...envelope.value, events: events.value };
}

/** Each task's part of a `tasks` message, decoded as a message of its own would be. */
function decodeTasks(message: string) {
  const envelope = decodeEnvelope(message);
  if (!envelope.ok || envelope.value.kind !== 'tasks') throw new Error(`not a tasks message: ${message}`);
  return envelope.value.tasks.map((json) => {
    const task = decodeTaskEnvelope(json);
    if (!task.ok) throw new Error(task.problem);
    return decodeAll(JSON.stringify(task.value));
  });
}

describe('encodeAppend', () => {
  it('sends one message per task with its events inline', () => {
    const messages = encodeAppend([progress('a', 1), progress('a', 2), progress('b', 7)], {
      maxBytes: 512 * 1024,
    });
    expect(messages.map(decodeAll)).toEqual([
      { v: 1, kind: 'events', taskId: 'a', seq: 2, events: [progress('a', 1), progress('a', 2)] },
      { v: 1, kind: 'events', taskId: 'b', seq: 7, events: [progress('b', 7)] },
    ]);
  });

  it('sends a reference above the byte limit, counting bytes not characters', () => {
    const small = encodeAppend([progress('a', 3)], { maxBytes: 512 * 1024 })[0]!;
    const limit = Buffer.byteLength(small) + 100;
    // 100 three-byte characters: 100 UTF-16 units but 300 bytes.
    const [message] = encodeAppend([progress('a', 3, '€'.repeat(100))], { maxBytes: limit });
    expect(decodeAll(message!)).toEqual({ v: 1, kind: 'ref', taskId: 'a', seq: 3 });
    const [fits] = encodeAppend([progress('a', 3, 'x'.repeat(100))], { maxBytes: limit });
    expect(Buffer.byteLength(fits!)).toBe(limit);
    expect(decodeAll(fits!)).toHaveProperty('events');
  });
});

describe('encodeAppend, combined', () => {
  const events = [progress('a', 1), progress('a', 2), progress('b', 7), progress('c', 3)];

  it('sends one tasks message holding what each task would have been sent alone', () => {
    const alone = encodeAppend(events, { maxBytes: 512 * 1024 });
    const messages = encodeAppend(events, { maxBytes: 512 * 1024, combine: true });
    expect(messages).toHaveLength(1);
    expect(decodeTasks(messages[0]!)).toEqual(alone.map(decodeAll));
  });

  it('keeps one task in its own format', () => {
    const one = [progress('a', 1)];
    expect(encodeAppend(one, { maxBytes: 512 * 1024, combine: true })).toEqual(
      encodeAppend(one, { maxBytes: 512 * 1024 }),
    );
  });

  it('splits into as few messages as fit the byte limit', () => {
    const alone = encodeAppend(events, { maxBytes: 512 * 1024 });
    // Room for two of the three tasks, not three.
    const two = Buffer.byteLength(
      encodeAppend(events.slice(0, 3), { maxBytes: 512 * 1024, combine: true })[0]!,
    );
    const messages = encodeAppend(events, { maxBytes: two, combine: true });
    expect(messages).toHaveLength(2);
    expect(Buffer.byteLength(messages[0]!)).toBe(two);
    expect(messages[1]).toBe(alone[2]);
  });
});

describe('encodeAppend with a hint key', () => {
  const key = new HintKey('wire-test-hint-key-0123456789abcdef0123');

  it('carries the MAC of each task’s events, which the receiver verifies over what it decoded', () => {
    const messages = encodeAppend([progress('a', 1), progress('a', 2), progress('b', 7)], {
      maxBytes: 512 * 1024,
      key,
    });
    const decoded = messages.map((message) => {
      const envelope = decodeEnvelope(message);
      if (!envelope.ok || envelope.value.kind !== 'events') throw new Error('expected events');
      const events = decodeEvents(envelope.value);
      if (!events.ok) throw new Error(events.problem);
      const { taskId, seq, mac } = envelope.value;
      return { taskId, authentication: key.authenticate({ taskId, seq, events: events.value }, mac) };
    });
    expect(decoded).toEqual([
      { taskId: 'a', authentication: 'verified' },
      { taskId: 'b', authentication: 'verified' },
    ]);
  });

  it('counts the MAC within the byte limit, and sends a reference without one above it', () => {
    const unsigned = encodeAppend([progress('a', 3, 'x'.repeat(100))], { maxBytes: 512 * 1024 })[0]!;
    const [signed] = encodeAppend([progress('a', 3, 'x'.repeat(100))], { maxBytes: 512 * 1024, key });
    const limit = Buffer.byteLength(signed!);
    expect(limit).toBeGreaterThan(Buffer.byteLength(unsigned));
    expect(encodeAppend([progress('a', 3, 'x'.repeat(100))], { maxBytes: limit, key })).toEqual([signed]);
    const [reference] = encodeAppend([progress('a', 3, 'x'.repeat(101))], { maxBytes: limit, key });
    expect(JSON.parse(reference!)).toEqual({ v: 1, kind: 'ref', taskId: 'a', seq: 3 });
  });
});

describe('decodeEnvelope and decodeEvents', () => {
  it('recognise probes', () => {
    expect(decodeAll(encodeProbe('p1'))).toEqual({ v: 1, kind: 'probe', id: 'p1' });
  });

  it.each([
    ['not JSON', 'garbage{'],
    ['a number', '42'],
    ['null', 'null'],
    ['an unknown kind', JSON.stringify({ v: 1, kind: 'other', taskId: 't', seq: 1 })],
    ['another version', JSON.stringify({ v: 2, kind: 'ref', taskId: 't', seq: 1 })],
    ['seq 0', JSON.stringify({ v: 1, kind: 'ref', taskId: 't', seq: 0 })],
    ['an empty event list', JSON.stringify({ v: 1, kind: 'events', taskId: 't', seq: 1, events: [] })],
  ])('reject %s', (_name, message) => {
    expect(decodeEnvelope(message).ok).toBe(false);
  });

  it.each([
    ['an empty list', { v: 1, kind: 'tasks', tasks: [] }],
    ['no list', { v: 1, kind: 'tasks', tasks: {} }],
  ])('reject a tasks message with %s', (_name, message) => {
    expect(decodeEnvelope(JSON.stringify(message)).ok).toBe(false);
  });

  it("reject a probe or a nested tasks message as a task's part, on its own", () => {
    for (const json of [
      { v: 1, kind: 'probe', id: 'p' },
      { v: 1, kind: 'tasks', tasks: [{ v: 1, kind: 'ref', taskId: 't', seq: 1 }] },
    ]) {
      expect(decodeTaskEnvelope(json).ok).toBe(false);
    }
    expect(decodeTaskEnvelope({ v: 1, kind: 'ref', taskId: 't', seq: 1 })).toEqual({
      ok: true,
      value: { v: 1, kind: 'ref', taskId: 't', seq: 1 },
    });
  });

  it.each([
    ['an invalid event', [{ ...progress('t', 1), data: { node: '' } }], 1],
    ['an event of another task', [progress('u', 1)], 1],
    ['a gap in seqs', [progress('t', 1), progress('t', 3)], 3],
    ['a seq other than the announced one', [progress('t', 1)], 2],
  ])('reject events with %s', (_name, events, seq) => {
    const envelope = decodeEnvelope(JSON.stringify({ v: 1, kind: 'events', taskId: 't', seq, events }));
    if (!envelope.ok || envelope.value.kind !== 'events') throw new Error('envelope should be valid');
    expect(decodeEvents(envelope.value).ok).toBe(false);
  });
});

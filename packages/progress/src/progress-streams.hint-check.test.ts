import { pino } from 'pino';
import type { StoredEvent } from './events.js';
import { describe, expect, it } from 'vitest';
import { InMemoryEventStore } from './in-memory-event-store.js';
import { ProgressStreams } from './progress-streams.js';
import { InstrumentedReader } from './testing/instrumented-reader.js';
import { ManualHintSource } from './testing/manual-hint-source.js';
import { ev, storedEvents } from './testing/stored-events.js';
import { eventually, range } from './testing/subscribers.js';

const TASK = 'task-h';

/** A subscriber that keeps the events themselves, to compare them with the log. */
function collect(streams: ProgressStreams, taskId: string) {
  const events: StoredEvent[] = [];
  let completed = false;
  const subscription = streams.events$(taskId).subscribe({
    next: (event) => events.push(event),
    complete: () => (completed = true),
  });
  return { events, subscription, isCompleted: () => completed };
}

/** Warning lines of the feed; the rate limit covers dropped events and false announcements alike. */
function warnings(lines: string[]): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.level === 40);
}

async function setUp(options: { hintWarningIntervalMs?: number } = {}) {
  const store = new InMemoryEventStore();
  const reader = new InstrumentedReader(store);
  // Hints from "another process": anyone who reaches the channel can send one.
  const hints = new ManualHintSource({ inProcess: false });
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const streams = new ProgressStreams({ store: reader, hints, logger, ...options });
  await store.append(TASK, [ev.created(['n1']), ev.started()]);
  return { store, reader, hints, streams, lines };
}

describe('ProgressStreams: a client receives only what is in the log or authenticated (invariant 8)', () => {
  it('a forged terminal event announced past the head reaches no subscriber; the real events do', async () => {
    const { store, hints, streams, lines } = await setUp();
    const subscriber = collect(streams, TASK);
    await eventually(() => expect(subscriber.events.map((e) => e.seq)).toEqual([1, 2]));

    const [forged] = storedEvents(TASK, [ev.completed(1, 0)], 3);
    hints.hint({ taskId: TASK, seq: 3, events: [forged!] });
    await eventually(() => expect(streams.hintCheckCounts().rejected['not-in-log']).toBe(1));
    expect(subscriber.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(subscriber.isCompleted()).toBe(false);

    const real = await store.append(TASK, [ev.nodeStarted('n1'), ev.nodeSucceeded('n1'), ev.completed(1, 0)]);
    hints.hint({ taskId: TASK, seq: 5, events: real });
    await eventually(() => expect(subscriber.isCompleted()).toBe(true));
    expect(subscriber.events).toEqual(await store.readTask(TASK));
    expect(streams.hintCheckCounts()).toMatchObject({ trusted: 0, matched: 3 });
    expect(warnings(lines)).toHaveLength(1);
    expect(warnings(lines)[0]).toMatchObject({
      taskId: TASK,
      seq: 3,
      claimedType: 'TaskCompleted',
      reason: 'not-in-log',
    });
  });

  it('an inline event that differs from the stored one at its seq is dropped and the stored one delivered', async () => {
    const { store, hints, streams } = await setUp();
    const subscriber = collect(streams, TASK);
    await eventually(() => expect(subscriber.events.map((e) => e.seq)).toEqual([1, 2]));
    const [real] = await store.append(TASK, [ev.nodeStarted('n1')]);
    // Same seq, position and time as the real event; only the type and data differ.
    const forged = {
      ...real!,
      type: 'TaskCompleted',
      data: { succeeded: 1, failed: 0, skipped: 0 },
    } as StoredEvent;
    hints.hint({ taskId: TASK, seq: 3, events: [forged] });
    await eventually(() => expect(subscriber.events.map((e) => e.seq)).toEqual([1, 2, 3]));
    expect(subscriber.events[2]).toEqual(real);
    expect(subscriber.isCompleted()).toBe(false);
    expect(streams.hintCheckCounts().rejected['differs-from-log']).toBe(1);
    subscriber.subscription.unsubscribe();
  });

  it('a genuine inline event is delivered identical to the log and counted as matched', async () => {
    const { store, hints, streams } = await setUp();
    const subscriber = collect(streams, TASK);
    await eventually(() => expect(subscriber.events).toHaveLength(2));
    const real = await store.append(TASK, [ev.nodeStarted('n1'), ev.nodeSucceeded('n1'), ev.completed(1, 0)]);
    // Data keys in another order than the store's: still the same event.
    const reordered = real.map((event) => ({
      ...event,
      data: Object.fromEntries(Object.entries(event.data).reverse()),
    }));
    hints.hint({ taskId: TASK, seq: 5, events: reordered as StoredEvent[] });
    await eventually(() => expect(subscriber.isCompleted()).toBe(true));
    expect(subscriber.events).toEqual(await store.readTask(TASK));
    const counts = streams.hintCheckCounts();
    expect(counts.matched).toBe(3);
    expect(Object.values(counts.rejected).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('a flood of forged hints is counted one by one and logged once per interval', async () => {
    const { store, hints, streams, lines } = await setUp({ hintWarningIntervalMs: 3_600_000 });
    const subscriber = collect(streams, TASK);
    await eventually(() => expect(subscriber.events).toHaveLength(2));
    for (let seq = 3; seq < 103; seq++) {
      const [forged] = storedEvents(TASK, [ev.completed(1, 0)], seq);
      hints.hint({ taskId: TASK, seq, events: [forged!] });
    }
    await eventually(() => expect(streams.hintCheckCounts().rejected['not-in-log']).toBe(100));
    expect(subscriber.isCompleted()).toBe(false);
    expect(warnings(lines)).toHaveLength(1);
    await store.append(TASK, [ev.failed()]);
    hints.hint({ taskId: TASK, seq: 3 });
    await eventually(() => expect(subscriber.isCompleted()).toBe(true));
    expect(subscriber.events.map((e) => e.seq)).toEqual(range(1, 3));
    expect(subscriber.events.at(-1)!.type).toBe('TaskFailed');
  });

  it('holds at most maxUnverifiedEvents per task and counts the surplus', async () => {
    const { hints, streams, reader } = await setUp({});
    const subscriber = collect(streams, TASK);
    await eventually(() => expect(subscriber.events).toHaveLength(2));
    // Hold every read so nothing is checked while the flood arrives.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    reader.beforeRead = () => held;
    const forged = storedEvents(
      TASK,
      Array.from({ length: 1500 }, (_, i) => ev.nodeProgress('n1', i, 1500)),
      3,
    );
    hints.hint({ taskId: TASK, seq: 1502, events: forged });
    expect(streams.hintCheckCounts().rejected.overflow).toBe(500);
    release();
    await eventually(() => expect(streams.hintCheckCounts().rejected['not-in-log']).toBe(1000));
    expect(subscriber.events).toHaveLength(2);
    subscriber.subscription.unsubscribe();
  });

  it('delivers authenticated inline events without a store read; only a gap before them is read', async () => {
    const { store, hints, streams, reader } = await setUp();
    const subscriber = collect(streams, TASK);
    await eventually(() => expect(subscriber.events).toHaveLength(2));
    const readsBefore = reader.readTaskCalls.length;
    // Seq 3 is never hinted: the authenticated hint of seq 4 shows the gap, which is read from the log.
    await store.append(TASK, [ev.nodeStarted('n1')]);
    const fourth = await store.append(TASK, [ev.nodeSucceeded('n1')]);
    hints.hint({ taskId: TASK, seq: 4, events: fourth, authentication: 'verified' });
    await eventually(() => expect(subscriber.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]));
    expect(reader.readTaskCalls.slice(readsBefore).map((call) => call.after)).toEqual([2]);
    // A second delivery of the same hint: dropped by seq.
    hints.hint({ taskId: TASK, seq: 4, events: fourth, authentication: 'verified' });

    const readsAfterGap = reader.readTaskCalls.length;
    const last = await store.append(TASK, [ev.completed(1, 0)]);
    hints.hint({ taskId: TASK, seq: 5, events: last, authentication: 'verified' });
    await eventually(() => expect(subscriber.isCompleted()).toBe(true));
    expect(reader.readTaskCalls.length).toBe(readsAfterGap);
    expect(subscriber.events).toEqual(await store.readTask(TASK));
    expect(streams.hintCheckCounts()).toMatchObject({
      authenticated: 3,
      matched: 0,
      unauthenticated: { invalid: 0, missing: 0 },
    });
  });

  it('checks events whose MAC does not verify against the log, counts them and warns at the limited rate', async () => {
    const { store, hints, streams, lines } = await setUp({ hintWarningIntervalMs: 3_600_000 });
    const subscriber = collect(streams, TASK);
    await eventually(() => expect(subscriber.events).toHaveLength(2));
    const [real] = await store.append(TASK, [ev.nodeStarted('n1')]);
    const forged = { ...real!, type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } };
    for (let i = 0; i < 10; i++) {
      hints.hint({ taskId: TASK, seq: 3, events: [forged as StoredEvent], authentication: 'invalid' });
    }
    await eventually(() => expect(subscriber.events.map((e) => e.seq)).toEqual([1, 2, 3]));
    expect(subscriber.events[2]).toEqual(real);
    expect(subscriber.isCompleted()).toBe(false);
    expect(streams.hintCheckCounts()).toMatchObject({
      authenticated: 0,
      unauthenticated: { invalid: 10, missing: 0 },
    });
    expect(streams.hintCheckCounts().rejected['differs-from-log']).toBeGreaterThanOrEqual(1);
    expect(warnings(lines)).toHaveLength(1);
    expect(warnings(lines)[0]).toMatchObject({ taskId: TASK, seq: 3, events: 1, problem: 'invalid' });
    subscriber.subscription.unsubscribe();
  });

  it('checks events that came without a MAC against the log and counts them without a warning', async () => {
    const { store, hints, streams, lines } = await setUp();
    const subscriber = collect(streams, TASK);
    await eventually(() => expect(subscriber.events).toHaveLength(2));
    const real = await store.append(TASK, [ev.nodeStarted('n1')]);
    hints.hint({ taskId: TASK, seq: 3, events: real, authentication: 'missing' });
    await eventually(() => expect(streams.hintCheckCounts().matched).toBe(1));
    expect(subscriber.events).toEqual(await store.readTask(TASK));
    expect(streams.hintCheckCounts()).toMatchObject({
      authenticated: 0,
      unauthenticated: { invalid: 0, missing: 1 },
    });
    expect(warnings(lines)).toEqual([]);
    subscriber.subscription.unsubscribe();
  });
});

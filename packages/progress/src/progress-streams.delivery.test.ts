import fc from 'fast-check';
import { lastValueFrom } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UnknownTaskError } from './errors.js';
import type { NewEvent } from './events.js';
import { InMemoryEventStore } from './in-memory-event-store.js';
import { LocalHintSource } from './local-hint-source.js';
import { ProgressStreams } from './progress-streams.js';
import { foldTask } from './reducer.js';
import { readTaskEvents } from './read-task-events.js';
import { InstrumentedReader } from './testing/instrumented-reader.js';
import { ManualHintSource } from './testing/manual-hint-source.js';
import { randomInt, seededRandom } from './testing/random.js';
import { ev } from './testing/stored-events.js';
import { eventually, range, record, type Recorder } from './testing/subscribers.js';
import { UnreliableHintSource, type HintFaults } from './testing/unreliable-hint-source.js';

const TASK = 'task-d';

/** A promise and its resolver, to hold a store read until the test lets it go. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Appends progress events in batches of the given sizes, then the terminal event. */
async function produce(store: InMemoryEventStore, taskId: string, batches: number[]): Promise<number> {
  let last = (await store.latestSeqs([taskId])).get(taskId) ?? 0;
  for (const size of batches) {
    const events: NewEvent[] = Array.from({ length: size }, (_, i) =>
      ev.nodeProgress('n1', last + i, 1_000_000),
    );
    last = (await store.append(taskId, events)).at(-1)!.seq;
  }
  return (await store.append(taskId, [ev.completed(0, 0, 0)]))[0]!.seq;
}

/**
 * Waits for `work` while the test drives virtual time, 5 ms a step, for at
 * most `budgetMs`: what is still missing then is a failure that says what
 * (`stuck()`), not a test timeout.
 */
async function onVirtualTime<T>(work: Promise<T>, budgetMs: number, stuck: () => string): Promise<T> {
  let settled = false;
  const done = work.finally(() => (settled = true));
  done.catch(() => undefined);
  for (let elapsed = 0; !settled && elapsed < budgetMs; elapsed += 5) await vi.advanceTimersByTimeAsync(5);
  if (!settled) throw new Error(`after ${budgetMs} ms of virtual time: ${stuck()}`);
  return done;
}

/** The subscribers that have not completed, and what they got. */
function describeUnfinished(recorders: readonly Recorder[]): string {
  const unfinished = recorders
    .filter((recorder) => !recorder.completed)
    .map(
      (recorder) =>
        `after ${recorder.after}: ${recorder.seqs.length} events, last ${recorder.seqs.at(-1) ?? 'none'}`,
    );
  return `subscribers have not completed: ${unfinished.join('; ')}`;
}

function expectExactlyOnceInOrder(recorder: Recorder, lastSeq: number): void {
  expect(recorder.seqs, `subscriber after ${recorder.after}`).toEqual(range(recorder.after + 1, lastSeq));
  expect(recorder.completed).toBe(true);
}

/**
 * The whole path under faults: a producer appends `total` events in random
 * batches; hints are lost, duplicated, reordered and sent by reference; store
 * reads are slow; the transport catches up now and then; subscribers join
 * early and late with various cursors. Each must get exactly its events.
 */
async function runChaos(options: {
  seed: number;
  total: number;
  faults: HintFaults;
  earlySubscribers: number;
  lateSubscribers: number;
  readPageSize: number;
  /** When set, timers are fake and the subscribers must finish within this much virtual time. */
  virtualBudgetMs?: number;
}): Promise<{ reads: number; dropped: number }> {
  const random = seededRandom(options.seed);
  const store = new InMemoryEventStore();
  const local = new LocalHintSource({ store });
  const hints = new UnreliableHintSource(local, random, options.faults);
  const reader = new InstrumentedReader(store);
  reader.beforeRead = () =>
    random() < 0.3
      ? new Promise((resolve) => setTimeout(resolve, randomInt(random, 0, 2)))
      : Promise.resolve();
  const streams = new ProgressStreams({ store: reader, hints, readPageSize: options.readPageSize });
  await store.append(TASK, [ev.created(['n1', 'n2'])]);

  const recorders: Recorder[] = [];
  for (let i = 0; i < options.earlySubscribers; i++) recorders.push(record(streams, TASK, 0));
  const states = lastValueFrom(streams.state$(TASK));

  // The transport's periodic catch-up (every real transport has one): it is what makes lost hints harmless.
  const catchUp = setInterval(() => hints.catchUp(), 5);
  try {
    const batches: number[] = [];
    for (let sum = 1; sum < options.total - 1;) {
      const size = Math.min(randomInt(random, 1, 25), options.total - 1 - sum);
      batches.push(size);
      sum += size;
    }
    let head = 1;
    const lateAt = new Set(
      Array.from({ length: options.lateSubscribers }, () => randomInt(random, 0, batches.length - 1)),
    );
    let index = 0;
    for (const size of batches) {
      if (lateAt.has(index)) {
        const choice = randomInt(random, 0, 3);
        const after = [0, randomInt(random, 0, head), head, head + randomInt(random, 1, 50)][choice]!;
        recorders.push(record(streams, TASK, after));
      }
      const events: NewEvent[] = Array.from({ length: size }, (_, i) =>
        ev.nodeProgress('n1', head + i, options.total),
      );
      head = (await store.append(TASK, events)).at(-1)!.seq;
      index++;
    }
    const lastSeq = (await store.append(TASK, [ev.completed(0, 0, 0)]))[0]!.seq;
    expect(lastSeq).toBe(options.total);
    // One more subscriber after the end, from a random point.
    recorders.push(record(streams, TASK, randomInt(random, 0, lastSeq + 3)));

    const finished = Promise.all([states, ...recorders.map((recorder) => recorder.finished)]);
    const budget = options.virtualBudgetMs;
    const [state] =
      budget === undefined
        ? await finished
        : await onVirtualTime(finished, budget, () => describeUnfinished(recorders));
    for (const recorder of recorders) expectExactlyOnceInOrder(recorder, lastSeq);
    expect(state).toEqual(foldTask(TASK, await readTaskEvents(store, TASK)));
    expect(local.watchCount(TASK)).toBe(0);
    expect(streams.watchedTaskCount).toBe(0);
    return { reads: reader.readTaskCalls.length, dropped: hints.dropped };
  } finally {
    clearInterval(catchUp);
  }
}

describe('ProgressStreams delivery under faults', () => {
  it('delivers 5,000 events exactly once, in order, to early and late subscribers, whatever the hints do', async () => {
    for (const seed of [1, 2, 3]) {
      const result = await runChaos({
        seed,
        total: 5_000,
        faults: { drop: 0.2, duplicate: 0.2, delay: 0.2, strip: 0.3 },
        earlySubscribers: 3,
        lateSubscribers: 12,
        readPageSize: 100,
      });
      // The faults happened: hints were lost and reads filled the gaps.
      expect(result.dropped).toBeGreaterThan(0);
      expect(result.reads).toBeGreaterThan(1);
    }
  });

  describe('on virtual time', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /**
     * Every delay (slow reads, late and duplicated hints, the catch-up) is a
     * fake timer driven by the test, and every random choice comes from the
     * case's seed: a failing case replays as it failed, and fast-check shrinks
     * a lost event to a small counterexample instead of a timeout.
     */
    it('holds for any fault mix, page size and subscriber cursors (property)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            seed: fc.integer(),
            total: fc.integer({ min: 2, max: 300 }),
            drop: fc.double({ min: 0, max: 0.9, noNaN: true }),
            duplicate: fc.double({ min: 0, max: 0.5, noNaN: true }),
            delay: fc.double({ min: 0, max: 0.5, noNaN: true }),
            strip: fc.double({ min: 0, max: 1, noNaN: true }),
            earlySubscribers: fc.integer({ min: 0, max: 3 }),
            lateSubscribers: fc.integer({ min: 0, max: 5 }),
            readPageSize: fc.integer({ min: 1, max: 50 }),
          }),
          async ({
            seed,
            total,
            drop,
            duplicate,
            delay,
            strip,
            earlySubscribers,
            lateSubscribers,
            readPageSize,
          }) => {
            vi.useFakeTimers();
            try {
              await runChaos({
                seed,
                total,
                faults: { drop, duplicate, delay, strip },
                earlySubscribers,
                lateSubscribers,
                readPageSize,
                virtualBudgetMs: 10_000,
              });
            } finally {
              vi.useRealTimers();
            }
          },
        ),
        // A run past 10 s of real time fails as such (and is shrunk) rather than hanging the test.
        { numRuns: 200, timeout: 10_000 },
      );
    });
  });
});

describe('ProgressStreams with many tasks at once', () => {
  it('routes each task’s hints to its own subscribers while producers append concurrently', async () => {
    const random = seededRandom(42);
    const store = new InMemoryEventStore();
    const local = new LocalHintSource({ store });
    const hints = new UnreliableHintSource(local, random, {
      drop: 0.1,
      duplicate: 0.2,
      delay: 0.3,
      strip: 0.3,
    });
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints, readPageSize: 20 });
    const tasks = Array.from({ length: 20 }, (_, i) => `task-${i}`);
    for (const task of tasks) await store.append(task, [ev.created(['n1'])]);
    const recorders = tasks.flatMap((task) =>
      Array.from({ length: 5 }, () => ({ task, recorder: record(streams, task, randomInt(random, 0, 3)) })),
    );
    expect(local.watchedTasks()).toHaveLength(tasks.length);
    const catchUp = setInterval(() => hints.catchUp(), 5);
    try {
      const lastSeqs = await Promise.all(
        tasks.map((task) =>
          produce(
            store,
            task,
            Array.from({ length: randomInt(random, 5, 30) }, () => randomInt(random, 1, 8)),
          ),
        ),
      );
      await Promise.all(recorders.map(({ recorder }) => recorder.finished));
      for (const { task, recorder } of recorders)
        expectExactlyOnceInOrder(recorder, lastSeqs[tasks.indexOf(task)]!);
    } finally {
      clearInterval(catchUp);
    }
    expect(local.watchedTasks()).toEqual([]);
    expect(streams.watchedTaskCount).toBe(0);
  });
});

describe('ProgressStreams shares one upstream per task', () => {
  it('1,000 subscribers: one watch, one store read to start, none while hints carry the events', async () => {
    const store = new InMemoryEventStore();
    const hints = new LocalHintSource({ store });
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints });
    await store.append(TASK, [ev.created(['n1'])]);
    const recorders = Array.from({ length: 1000 }, () => record(streams, TASK));
    expect(hints.watchCount(TASK)).toBe(1);
    expect(streams.subscriberCount(TASK)).toBe(1000);
    await eventually(() => expect(recorders.every((r) => r.seqs.length === 1)).toBe(true));
    const lastSeq = await produce(
      store,
      TASK,
      Array.from({ length: 20 }, () => 10),
    );
    await Promise.all(recorders.map((r) => r.finished));
    for (const recorder of recorders) expectExactlyOnceInOrder(recorder, lastSeq);
    expect(reader.readTaskCalls).toHaveLength(1);
    expect(hints.watchCount(TASK)).toBe(0);
  });

  it('1,000 subscribers seeing the same gaps share the store reads', async () => {
    const store = new InMemoryEventStore();
    // Hints by reference: every hint is a gap to read.
    const hints = new LocalHintSource({ store, includeEvents: false });
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints, maxConcurrentReads: 4 });
    await store.append(TASK, [ev.created(['n1'])]);
    const recorders = Array.from({ length: 1000 }, () => record(streams, TASK));
    await eventually(() => expect(recorders.every((r) => r.seqs.length === 1)).toBe(true));
    const appends = 30;
    const lastSeq = await produce(
      store,
      TASK,
      Array.from({ length: appends - 1 }, () => 5),
    );
    await Promise.all(recorders.map((r) => r.finished));
    for (const recorder of recorders) expectExactlyOnceInOrder(recorder, lastSeq);
    // At most one read per hint plus the first, whatever the number of subscribers.
    expect(reader.readTaskCalls.length).toBeLessThanOrEqual(appends + 1);
    expect(reader.maxInFlight).toBeLessThanOrEqual(4);
    expect(hints.watchCount(TASK)).toBe(0);
  });

  it('1,000 late subscribers from the same seq cost one read; different tasks get one watch each', async () => {
    const store = new InMemoryEventStore();
    const hints = new LocalHintSource({ store });
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints });
    await store.append('a', [ev.created(['n1']), ev.started(), ev.nodeStarted('n1')]);
    await store.append('b', [ev.created(['n1'])]);
    const onA = Array.from({ length: 1000 }, () => record(streams, 'a', 1));
    const onB = record(streams, 'b');
    expect(hints.watchedTasks().sort()).toEqual(['a', 'b']);
    await eventually(() => expect(onA.every((r) => r.seqs.length === 2)).toBe(true));
    expect(reader.readTaskCalls.filter((call) => call.taskId === 'a')).toHaveLength(1);
    await store.append('a', [ev.nodeSucceeded('n1'), ev.completed(1, 0)]);
    await store.append('b', [ev.failed()]);
    await Promise.all([...onA, onB].map((r) => r.finished));
    for (const recorder of onA) expectExactlyOnceInOrder(recorder, 5);
    expectExactlyOnceInOrder(onB, 2);
    expect(hints.watchedTasks()).toEqual([]);
  });

  it('unsubscribing releases the watch; subscribing again starts a fresh upstream', async () => {
    const store = new InMemoryEventStore();
    const hints = new ManualHintSource();
    const streams = new ProgressStreams({ store, hints });
    await store.append(TASK, [ev.created(['n1'])]);
    const subscriptions = Array.from({ length: 10 }, () => streams.events$(TASK).subscribe());
    for (const subscription of subscriptions) subscription.unsubscribe();
    expect(hints.watchCalls).toEqual([TASK]);
    expect(hints.unwatchCalls).toEqual([TASK]);
    const again = record(streams, TASK);
    await eventually(() => expect(again.seqs).toEqual([1]));
    expect(hints.watchCalls).toEqual([TASK, TASK]);
    again.subscription.unsubscribe();
    expect(hints.unwatchCalls).toEqual([TASK, TASK]);
  });
});

describe('ProgressStreams: late subscribers and the switch to live', () => {
  it('subscribers with any cursor on a running task get the rest and go live', async () => {
    const store = new InMemoryEventStore();
    const hints = new LocalHintSource({ store });
    const streams = new ProgressStreams({ store, hints, readPageSize: 7 });
    await store.append('running', [
      ev.created(['n1']),
      ...Array.from({ length: 29 }, () => ev.nodeProgress('n1', 1, 2)),
    ]);
    const afters = [0, 1, 15, 29, 30, 31, 40];
    const recorders = afters.map((after) => record(streams, 'running', after));
    await eventually(() => expect(recorders[0]!.seqs).toHaveLength(30));
    const lastSeq = await produce(store, 'running', [5, 6]);
    await Promise.all(recorders.map((r) => r.finished));
    for (const recorder of recorders) {
      if (recorder.after < lastSeq) expectExactlyOnceInOrder(recorder, lastSeq);
      else expect(recorder.seqs).toEqual([]);
    }
  });

  it('subscribers of an ended task get the rest and complete, from any cursor', async () => {
    const store = new InMemoryEventStore();
    const hints = new LocalHintSource({ store });
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints, readPageSize: 4 });
    await store.append(TASK, [ev.created(['n1'])]);
    const lastSeq = await produce(store, TASK, [10, 10]);
    for (const after of [0, 1, 10, lastSeq - 1, lastSeq, lastSeq + 10]) {
      const recorder = record(streams, TASK, after);
      await recorder.finished;
      if (after < lastSeq) expectExactlyOnceInOrder(recorder, lastSeq);
      else expect(recorder.seqs).toEqual([]);
    }
    expect(hints.watchCount(TASK)).toBe(0);
  });

  it('a late subscriber reading a stale snapshot while events arrive live loses and repeats nothing', async () => {
    const store = new InMemoryEventStore();
    const hints = new LocalHintSource({ store });
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints, readPageSize: 1000 });
    await store.append(TASK, [
      ev.created(['n1']),
      ...Array.from({ length: 49 }, () => ev.nodeProgress('n1', 1, 2)),
    ]);
    const live = record(streams, TASK, 50);
    await eventually(() => expect(reader.readTaskCalls).toHaveLength(1));
    await eventually(() => expect(reader.inFlight).toBe(0));
    // The late subscriber's read sees 1..50, then is held while 51..80 arrive live.
    const hold = gate();
    reader.afterRead = () => hold.opened;
    const late = record(streams, TASK, 0);
    await eventually(() => expect(reader.inFlight).toBe(1));
    for (let i = 0; i < 30; i++) await store.append(TASK, [ev.nodeProgress('n1', i, 30)]);
    expect(live.seqs).toEqual(range(51, 80));
    expect(late.seqs).toEqual([]);
    reader.afterRead = () => Promise.resolve();
    hold.open();
    await eventually(() => expect(late.seqs).toHaveLength(80));
    expect(late.seqs).toEqual(range(1, 80));
    await store.append(TASK, [ev.completed(0, 0)]);
    await Promise.all([live.finished, late.finished]);
    expect(late.seqs).toEqual(range(1, 81));
    expect(live.seqs).toEqual(range(51, 81));
  });
});

describe('ProgressStreams: hints are only hints', () => {
  it('takes duplicated and out-of-order inline events once each, in seq order', async () => {
    const store = new InMemoryEventStore();
    const hints = new ManualHintSource();
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints });
    await store.append(TASK, [ev.created(['n1'])]);
    const recorder = record(streams, TASK);
    await eventually(() => expect(recorder.seqs).toEqual([1]));
    const stored = await store.append(
      TASK,
      Array.from({ length: 5 }, (_, i) => ev.nodeProgress('n1', i, 5)),
    );
    const [e2, e3, e4, e5, e6] = stored;
    hints.hint({ taskId: TASK, seq: 3, events: [e3!] });
    hints.hint({ taskId: TASK, seq: 6, events: [e6!, e5!] });
    expect(recorder.seqs).toEqual([1]);
    hints.hint({ taskId: TASK, seq: 2, events: [e2!] });
    hints.hint({ taskId: TASK, seq: 3, events: [e3!, e2!] });
    expect(recorder.seqs).toEqual([1, 2, 3]);
    hints.hint({ taskId: TASK, seq: 4, events: [e4!] });
    expect(recorder.seqs).toEqual(range(1, 6));
    hints.hint({ taskId: TASK, seq: 6, events: [e6!] });
    hints.hint({ taskId: 'other', seq: 7, events: [{ ...e6!, taskId: 'other', seq: 7 }] });
    expect(recorder.seqs).toEqual(range(1, 6));
    // The first read, and one for the gap that seq 3 showed (it reads at once rather than wait for seq 2).
    await eventually(() => expect(reader.inFlight).toBe(0));
    expect(reader.readTaskCalls.map((call) => call.after)).toEqual([0, 1]);
    expect(recorder.seqs).toEqual(range(1, 6));
    recorder.subscription.unsubscribe();
  });

  it('reads a gap from the store when a hint skips seqs or carries no events', async () => {
    const store = new InMemoryEventStore();
    const hints = new ManualHintSource();
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints });
    await store.append(TASK, [ev.created(['n1'])]);
    const recorder = record(streams, TASK);
    await eventually(() => expect(recorder.seqs).toEqual([1]));
    const stored = await store.append(
      TASK,
      Array.from({ length: 4 }, (_, i) => ev.nodeProgress('n1', i, 4)),
    );
    // Seq 5 arrives first: 2..4 are read from the store.
    hints.hint({ taskId: TASK, seq: 5, events: [stored[3]!] });
    await eventually(() => expect(recorder.seqs).toEqual(range(1, 5)));
    expect(reader.readTaskCalls.at(-1)).toMatchObject({ after: 1 });
    await store.append(TASK, [ev.completed(0, 0)]);
    hints.hint({ taskId: TASK, seq: 6 });
    await recorder.finished;
    expect(recorder.seqs).toEqual(range(1, 6));
  });

  it('a resync during a read catches up events committed after the read’s snapshot', async () => {
    const store = new InMemoryEventStore();
    const hints = new ManualHintSource();
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints });
    await store.append(TASK, [ev.created(['n1']), ev.started(), ev.nodeStarted('n1')]);
    const hold = gate();
    reader.afterRead = () => hold.opened;
    const recorder = record(streams, TASK);
    await eventually(() => expect(reader.inFlight).toBe(1));
    // Committed after the snapshot, and their hints were lost.
    await store.append(TASK, [ev.nodeProgress('n1', 1, 2), ev.nodeProgress('n1', 2, 2)]);
    hints.resync();
    reader.afterRead = () => Promise.resolve();
    hold.open();
    await eventually(() => expect(recorder.seqs).toEqual(range(1, 5)));
    await store.append(TASK, [ev.nodeSucceeded('n1'), ev.completed(1, 0)]);
    hints.resync();
    await recorder.finished;
    expect(recorder.seqs).toEqual(range(1, 7));
  });

  it('a hint announcing seqs the store does not have does not make it read in a loop', async () => {
    const store = new InMemoryEventStore();
    const hints = new ManualHintSource();
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints });
    await store.append(TASK, [ev.created(['n1']), ev.started()]);
    const recorder = record(streams, TASK);
    await eventually(() => expect(recorder.seqs).toEqual([1, 2]));
    hints.hint({ taskId: TASK, seq: 100 });
    await eventually(() => expect(reader.readTaskCalls.length).toBeGreaterThanOrEqual(2));
    await eventually(() => expect(reader.inFlight).toBe(0));
    const readsAfterBogusHint = reader.readTaskCalls.length;
    await store.append(TASK, [ev.failed()]);
    hints.hint({ taskId: TASK, seq: 3 });
    await recorder.finished;
    expect(recorder.seqs).toEqual([1, 2, 3]);
    expect(readsAfterBogusHint).toBeLessThanOrEqual(3);
    expect(reader.readTaskCalls.length).toBeLessThanOrEqual(readsAfterBogusHint + 1);
  });

  it('a subscriber that appends while handling an event (hints delivered synchronously) still sees every event once, in order', async () => {
    const store = new InMemoryEventStore();
    const hints = new LocalHintSource({ store });
    const streams = new ProgressStreams({ store, hints });
    await store.append(TASK, [ev.created(['n1'])]);
    const watcher = record(streams, TASK);
    const seen: number[] = [];
    const appends: Promise<unknown>[] = [];
    const worker = streams.events$(TASK).subscribe((event) => {
      seen.push(event.seq);
      if (event.seq < 200) appends.push(store.append(TASK, [ev.nodeProgress('n1', event.seq, 200)]));
      else if (event.seq === 200) appends.push(store.append(TASK, [ev.completed(0, 0)]));
    });
    // An impatient subscriber that leaves in the middle of a delivery.
    const leaver = streams.events$(TASK).subscribe((event) => {
      if (event.seq === 50) leaver.unsubscribe();
    });
    await watcher.finished;
    await Promise.all(appends);
    expect(watcher.seqs).toEqual(range(1, 201));
    expect(seen).toEqual(range(1, 201));
    expect(worker.closed).toBe(true);
    expect(hints.watchCount(TASK)).toBe(0);
  });
});

describe('ProgressStreams errors', () => {
  it('100 subscribers of an unknown task: one read, UnknownTaskError for each, watch released', async () => {
    const store = new InMemoryEventStore();
    const hints = new ManualHintSource();
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints });
    const recorders = Array.from({ length: 100 }, () => record(streams, 'ghost'));
    const results = await Promise.allSettled(recorders.map((r) => r.finished));
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(UnknownTaskError);
    }
    expect(reader.readTaskCalls).toHaveLength(1);
    expect(hints.unwatchCalls).toEqual(['ghost']);
    expect(streams.watchedTaskCount).toBe(0);
  });

  it('retries failed store reads, then gives the error to subscribers when they keep failing', async () => {
    const store = new InMemoryEventStore();
    const hints = new LocalHintSource({ store, includeEvents: false });
    const reader = new InstrumentedReader(store);
    const streams = new ProgressStreams({ store: reader, hints, readRetries: 3, readRetryDelayMs: 1 });
    await store.append(TASK, [ev.created(['n1'])]);
    reader.failNext = 3;
    const recorder = record(streams, TASK);
    await eventually(() => expect(recorder.seqs).toEqual([1]));
    expect(reader.readTaskCalls).toHaveLength(4);

    reader.failNext = 4;
    await store.append(TASK, [ev.started()]);
    await expect(recorder.finished).rejects.toThrow('connection terminated unexpectedly');
    expect(recorder.seqs).toEqual([1]);
    expect(hints.watchCount(TASK)).toBe(0);
  });

  it('ends every stream with the hint source’s error rather than going quiet', async () => {
    const store = new InMemoryEventStore();
    const hints = new ManualHintSource();
    const streams = new ProgressStreams({ store, hints });
    await store.append('a', [ev.created(['n1'])]);
    await store.append('b', [ev.created(['n1'])]);
    const a = record(streams, 'a');
    const b = record(streams, 'b');
    await eventually(() => expect([a.seqs, b.seqs]).toEqual([[1], [1]]));
    hints.fail(new Error('listener gone'));
    await expect(a.finished).rejects.toThrow('listener gone');
    await expect(b.finished).rejects.toThrow('listener gone');
    expect(streams.watchedTaskCount).toBe(0);
  });
});

import { randomBytes, randomUUID } from 'node:crypto';
import { filter, firstValueFrom, take, timeout, type Subscription } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TransportUnavailableError } from '../errors.js';
import type { NewEvent, StoredEvent } from '../events.js';
import { HintKey, type SignedHint } from '../hint-key.js';
import { ProgressStreams } from '../progress-streams.js';
import type { EventStore } from '../store.js';
import type { Hint, Transport, TransportHealth } from '../transport.js';
import { InstrumentedReader } from './instrumented-reader.js';
import { ev } from './stored-events.js';

/** What the suite needs from a transport package: its real server behind a store. */
export interface TransportContractOptions {
  /** Once per suite: the event log the transports announce (a migrated database), and how to release it. */
  setup(): Promise<{ store: EventStore; close(): Promise<void> }>;
  /**
   * A fresh, unstarted transport over the real server, announcing appends to
   * `store`, with `hintKey` when the suite gives one (see `signsHints`). All
   * on one channel: two transports of the suite reach each other.
   */
  create(store: EventStore, options?: { hintKey?: HintKey }): Transport;
  /**
   * True when the transport carries inline events to other processes and
   * takes a hint key: the suite then checks that signed events reach
   * subscribers without a log read and that nothing else does. Default false
   * (polling reads the log itself).
   */
  signsHints?: boolean;
  /**
   * A transport whose server is not there (a closed port, a database that
   * does not exist), configured with a password: `names` is what its start
   * error must name (the address, or the server's own words), `secret` what
   * it must never say.
   */
  createUnreachable(store: EventStore): Promise<UnreachableTransport> | UnreachableTransport;
  /** How long a hint or a probe may take on this machine, in ms. Default 20000. */
  waitMs?: number;
}

export interface UnreachableTransport {
  transport: Transport;
  names: string | RegExp;
  secret: string;
}

/**
 * The behaviour every Transport shares, as {@link Transport} states it: a
 * second start resolves without doing anything, a start after stop rejects
 * with TransportUnavailableError, a started transport is healthy and says so
 * first on health$, probe() is a real round trip, watches are counted, only
 * watched tasks get hints, every appended event is announced once in order
 * under concurrent writers, a large event arrives whole, and a start against a
 * server that is not there rejects with TransportUnavailableError naming it
 * and never its password. Each transport package runs it against its real
 * server.
 */
export function transportContract(name: string, options: TransportContractOptions): void {
  describe(`Transport contract: ${name}`, () => {
    const waitMs = options.waitMs ?? 20_000;
    let store: EventStore;
    let close: () => Promise<void>;
    const started: Transport[] = [];

    beforeAll(async () => {
      ({ store, close } = await options.setup());
    });

    afterEach(async () => {
      await Promise.all(started.splice(0).map((transport) => transport.stop()));
    });

    afterAll(async () => {
      await close?.();
    });

    async function start(createOptions: { hintKey?: HintKey } = {}): Promise<Transport> {
      const transport = options.create(store, createOptions);
      started.push(transport);
      await transport.start();
      return transport;
    }

    /** Appends as the notifier does: the in-transaction hook, then afterCommit. */
    async function announce(transport: Transport, taskId: string, first: boolean): Promise<StoredEvent[]> {
      const events = first ? [ev.created(['n1'])] : [ev.nodeStarted('n1')];
      const stored = await store.append(
        taskId,
        events,
        transport.inTransaction ? { hook: transport.inTransaction } : {},
      );
      await transport.afterCommit?.(stored);
      return stored;
    }

    function nextHint(transport: Transport, taskIds: readonly string[]): Promise<Hint> {
      return firstValueFrom(
        transport.hints$.pipe(
          filter((hint) => taskIds.includes(hint.taskId)),
          take(1),
          timeout(waitMs),
        ),
      );
    }

    it('resolves a second start without doing anything, and refuses a start after stop', async () => {
      const transport = await start();
      await expect(transport.start()).resolves.toBeUndefined();
      expect(await transport.probe(waitMs)).toBeGreaterThanOrEqual(0);
      await transport.stop();
      await expect(transport.stop()).resolves.toBeUndefined();
      await expect(transport.start()).rejects.toBeInstanceOf(TransportUnavailableError);
    });

    it('says it is healthy first on health$ once started', async () => {
      const transport = await start();
      const health = await firstValueFrom(transport.health$.pipe(timeout(waitMs)));
      expect(health).toEqual({ healthy: true, reason: null });
    });

    it('probes with a real round trip that takes less than its timeout', async () => {
      const transport = await start();
      const roundTripMs = await transport.probe(waitMs);
      expect(roundTripMs).toBeGreaterThanOrEqual(0);
      expect(roundTripMs).toBeLessThan(waitMs);
    });

    it('counts watches: a task watched twice keeps its hints until unwatched twice', async () => {
      const transport = await start();
      const [kept, other] = [`contract-${randomUUID()}`, `contract-${randomUUID()}`];
      transport.watch(kept);
      transport.watch(kept);
      transport.watch(other);
      transport.unwatch(kept);
      const first = nextHint(transport, [kept]);
      await announce(transport, kept, true);
      expect((await first).taskId).toBe(kept);

      transport.unwatch(kept);
      // Appended first: a hint for it would come before the other task's.
      const next = nextHint(transport, [kept, other]);
      await announce(transport, kept, false);
      await announce(transport, other, true);
      expect((await next).taskId).toBe(other);
    });

    it('announces every event of watched tasks once, in order, with concurrent writers', async () => {
      const transport = await start();
      const tasks = Array.from({ length: 4 }, () => `contract-${randomUUID()}`);
      const [unwatched, ...watched] = tasks as [string, ...string[]];
      const hints: Hint[] = [];
      const subscription = transport.hints$.subscribe((hint) => hints.push(hint));
      try {
        watched.forEach((taskId) => transport.watch(taskId));
        const appendsPerTask = 20;
        await Promise.all(
          tasks.map(async (taskId) => {
            await announce(transport, taskId, true);
            for (let i = 1; i < appendsPerTask; i++) await announce(transport, taskId, false);
          }),
        );
        const hintsOf = (taskId: string) => hints.filter((hint) => hint.taskId === taskId);
        await vi.waitFor(
          () => {
            for (const taskId of watched) expect(hintsOf(taskId).at(-1)?.seq).toBe(appendsPerTask);
          },
          { timeout: waitMs, interval: 20 },
        );
        for (const taskId of watched) {
          const stored = await store.readTask(taskId);
          // Hints may be merged or sent by reference, but they never go back, and
          // the events they carry are the stored ones, each once.
          const seqs = hintsOf(taskId).map((hint) => hint.seq);
          expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
          const carried = hintsOf(taskId).flatMap((hint) => hint.events ?? []);
          expect(carried).toEqual(stored.filter((event) => carried.some((c) => c.seq === event.seq)));
          expect(new Set(carried.map((event) => event.seq)).size).toBe(carried.length);
        }
        expect(hints.some((hint) => hint.taskId === unwatched)).toBe(false);
      } finally {
        subscription.unsubscribe();
      }
    });

    it('announces a 20 KB event so that it arrives whole', async () => {
      const transport = await start();
      const taskId = `contract-${randomUUID()}`;
      transport.watch(taskId);
      await announce(transport, taskId, true);
      const big = 'é'.repeat(10_000); // 20,000 bytes in UTF-8
      const next = firstValueFrom(
        transport.hints$.pipe(
          filter((hint) => hint.taskId === taskId && hint.seq >= 2),
          take(1),
          timeout(waitMs),
        ),
      );
      const stored = await store.append(taskId, [ev.nodeProgress('n1', 1, 2, big)], {
        ...(transport.inTransaction && { hook: transport.inTransaction }),
      });
      await transport.afterCommit?.(stored);
      const hint = await next;
      expect(hint.seq).toBe(2);
      // Whole or not at all: a hint without events makes subscribers read the log.
      if (hint.events) expect(hint.events.find((event) => event.seq === 2)).toEqual(stored[0]);
    });

    if (options.signsHints) hintKeyContract(() => store, start, waitMs);

    it('refuses a start when its server is not there, naming it and never the password', async () => {
      const { transport, names, secret } = await options.createUnreachable(store);
      started.push(transport);
      const health: TransportHealth[] = [];
      const subscription = transport.health$.subscribe((h) => health.push(h));
      try {
        const failure = await transport.start().then(
          () => null,
          (err: unknown) => err,
        );
        expect(failure).toBeInstanceOf(TransportUnavailableError);
        const message = (failure as Error).message;
        if (typeof names === 'string') expect(message).toContain(names);
        else expect(message).toMatch(names);
        expect(health.at(-1)).toMatchObject({ healthy: false, reason: expect.any(String) });
        expect(JSON.stringify({ message, health })).not.toContain(secret);
      } finally {
        subscription.unsubscribe();
      }
    });
  });
}

/** A key that signs other events than those sent: a genuine MAC over altered data. */
class MacOfOtherEvents extends HintKey {
  readonly #genuine: readonly StoredEvent[];

  constructor(secret: Uint8Array, genuine: readonly StoredEvent[]) {
    super(secret);
    this.#genuine = genuine;
  }

  override sign(hint: SignedHint): string {
    return super.sign({ ...hint, events: this.#genuine });
  }
}

/**
 * Invariant 8 with a hint key: events inline in a hint whose MAC verifies are
 * delivered without a store read; a MAC made with another key, a genuine MAC
 * over altered data, or none at all leaves the events to the log check, and
 * is counted; a receiver without a key checks everything against the log.
 * Store reads are counted on the reader of the receiving ProgressStreams.
 */
function hintKeyContract(
  getStore: () => EventStore,
  start: (options?: { hintKey?: HintKey }) => Promise<Transport>,
  waitMs: number,
): void {
  describe('hint key (PROGRESS_HINT_KEY)', () => {
    const secret = randomBytes(32);
    const key = new HintKey(secret);
    const otherKey = new HintKey(randomBytes(32));
    const subscriptions: Subscription[] = [];
    const wait = { timeout: waitMs, interval: 10 };

    afterEach(() => {
      subscriptions.splice(0).forEach((subscription) => subscription.unsubscribe());
    });

    /** A subscriber of a new task with two events, through ProgressStreams over `receiver`. */
    async function follow(receiver: Transport) {
      const store = getStore();
      const taskId = `contract-${randomUUID()}`;
      await store.append(taskId, [ev.created(['n1']), ev.started()]);
      const reader = new InstrumentedReader(store);
      const streams = new ProgressStreams({ store: reader, hints: receiver });
      const events: StoredEvent[] = [];
      const hints: Hint[] = [];
      const subscription = receiver.hints$.subscribe((hint) => {
        if (hint.taskId === taskId) hints.push(hint);
      });
      subscription.add(streams.events$(taskId).subscribe((event) => events.push(event)));
      subscriptions.push(subscription);
      await vi.waitFor(() => expect(events).toHaveLength(2), wait);
      const total = () => reader.calls.readTask + reader.calls.latestSeqs;
      const before = total();
      return { taskId, streams, events, hints, readsSinceFirstDelivery: () => total() - before };
    }

    /**
     * A hint whose MAC did not verify: counted as invalid, checked against the
     * log, and the subscriber gets the stored event `real` instead of the sent one.
     */
    async function expectStoredInsteadOfInvalid(
      subscriber: Awaited<ReturnType<typeof follow>>,
      real: StoredEvent,
    ): Promise<void> {
      await vi.waitFor(
        () => expect(subscriber.streams.hintCheckCounts().unauthenticated.invalid).toBe(1),
        wait,
      );
      await vi.waitFor(() => expect(subscriber.events).toHaveLength(3), wait);
      expect(subscriber.events[2]).toEqual(real);
      expect(subscriber.hints.map((hint) => hint.authentication)).toEqual(['invalid']);
      expect(subscriber.streams.hintCheckCounts()).toMatchObject({
        authenticated: 0,
        rejected: { 'differs-from-log': 1 },
      });
    }

    /** Appends as the notifier does: NOTIFY inside the transaction, then afterCommit. */
    async function appendAs(
      transport: Transport,
      taskId: string,
      events: NewEvent[],
    ): Promise<StoredEvent[]> {
      const stored = await getStore().append(
        taskId,
        events,
        transport.inTransaction ? { hook: transport.inTransaction } : {},
      );
      await transport.afterCommit?.(stored);
      return stored;
    }

    /** Announces `events` the way `transport` announces an append, without appending them. */
    async function sendAs(transport: Transport, events: readonly StoredEvent[]): Promise<void> {
      const hook = transport.inTransaction;
      if (hook) {
        // A NOTIFY leaves with the commit of its transaction: one that appends to a task of its own.
        await getStore().append(`carrier-${randomUUID()}`, [ev.created(['n1'])], {
          hook: (tx) => hook(tx, events),
        });
      }
      await transport.afterCommit?.(events);
    }

    it('delivers signed inline events without a store read, each once and in order', async () => {
      const [sender, receiver] = [await start({ hintKey: key }), await start({ hintKey: key })];
      const subscriber = await follow(receiver);
      const first = await appendAs(sender, subscriber.taskId, [ev.nodeStarted('n1'), ev.nodeSucceeded('n1')]);
      await vi.waitFor(() => expect(subscriber.events).toHaveLength(4), wait);
      // The same signed hint again (a replay, a second delivery): verified, and dropped by seq.
      await sendAs(sender, first);
      await appendAs(sender, subscriber.taskId, [ev.completed(1, 0)]);
      await vi.waitFor(() => expect(subscriber.events).toHaveLength(5), wait);
      await vi.waitFor(() => expect(subscriber.hints).toHaveLength(3), wait);

      expect(subscriber.events).toEqual(await getStore().readTask(subscriber.taskId));
      expect(subscriber.hints.map((hint) => hint.authentication)).toEqual([
        'verified',
        'verified',
        'verified',
      ]);
      expect(subscriber.readsSinceFirstDelivery()).toBe(0);
      expect(subscriber.streams.hintCheckCounts()).toMatchObject({
        authenticated: 5,
        matched: 0,
        unauthenticated: { invalid: 0, missing: 0 },
      });
    });

    it('does not deliver a forged event signed with another key: subscribers get the stored one', async () => {
      const [receiver, forger] = [await start({ hintKey: key }), await start({ hintKey: otherKey })];
      const subscriber = await follow(receiver);
      // Appended without a notification: only the forgery announces seq 3.
      const [real] = await getStore().append(subscriber.taskId, [ev.nodeStarted('n1')]);
      const forged = { ...real!, type: 'TaskCompleted', data: { succeeded: 1, failed: 0, skipped: 0 } };
      await sendAs(forger, [forged as StoredEvent]);

      await expectStoredInsteadOfInvalid(subscriber, real!);
    });

    it('does not deliver altered data under the MAC of the genuine event: subscribers get the stored one', async () => {
      const receiver = await start({ hintKey: key });
      const subscriber = await follow(receiver);
      const [real] = await getStore().append(subscriber.taskId, [ev.nodeProgress('n1', 1, 2, 'genuine')]);
      const altered = {
        ...real!,
        data: { node: 'n1', done: 2, total: 2, message: 'altered' },
      } as StoredEvent;
      const tamperer = await start({ hintKey: new MacOfOtherEvents(secret, [real!]) });
      await sendAs(tamperer, [altered]);

      await expectStoredInsteadOfInvalid(subscriber, real!);
    });

    it('checks an unsigned hint against the log at a receiver with the key, and counts it', async () => {
      const [sender, receiver] = [await start(), await start({ hintKey: key })];
      const subscriber = await follow(receiver);
      await appendAs(sender, subscriber.taskId, [ev.nodeStarted('n1')]);

      await vi.waitFor(() => expect(subscriber.events).toHaveLength(3), wait);
      expect(subscriber.events).toEqual(await getStore().readTask(subscriber.taskId));
      expect(subscriber.hints.map((hint) => hint.authentication)).toEqual(['missing']);
      expect(subscriber.readsSinceFirstDelivery()).toBeGreaterThan(0);
      expect(subscriber.streams.hintCheckCounts()).toMatchObject({
        authenticated: 0,
        matched: 1,
        unauthenticated: { invalid: 0, missing: 1 },
      });
    });

    it('checks signed events against the log at a receiver without the key, as without keys', async () => {
      const [sender, receiver] = [await start({ hintKey: key }), await start()];
      const subscriber = await follow(receiver);
      await appendAs(sender, subscriber.taskId, [ev.nodeStarted('n1')]);

      await vi.waitFor(() => expect(subscriber.events).toHaveLength(3), wait);
      expect(subscriber.events).toEqual(await getStore().readTask(subscriber.taskId));
      expect(subscriber.hints.map((hint) => hint.authentication)).toEqual([undefined]);
      expect(subscriber.readsSinceFirstDelivery()).toBeGreaterThan(0);
      expect(subscriber.streams.hintCheckCounts()).toMatchObject({
        authenticated: 0,
        matched: 1,
        unauthenticated: { invalid: 0, missing: 0 },
      });
    });
  });
}

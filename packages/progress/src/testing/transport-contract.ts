import { randomUUID } from 'node:crypto';
import { filter, firstValueFrom, take, timeout } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TransportUnavailableError } from '../errors.js';
import type { StoredEvent } from '../events.js';
import type { EventStore } from '../store.js';
import type { Hint, Transport, TransportHealth } from '../transport.js';
import { ev } from './stored-events.js';

/** What the suite needs from a transport package: its real server behind a store. */
export interface TransportContractOptions {
  /** Once per suite: the event log the transports announce (a migrated database), and how to release it. */
  setup(): Promise<{ store: EventStore; close(): Promise<void> }>;
  /** A fresh, unstarted transport over the real server, announcing appends to `store`. */
  create(store: EventStore): Transport;
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

    async function start(): Promise<Transport> {
      const transport = options.create(store);
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

import { randomUUID } from 'node:crypto';
import { filter, firstValueFrom, take, timeout } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TransportUnavailableError } from '../errors.js';
import type { StoredEvent } from '../events.js';
import type { EventStore } from '../store.js';
import type { Hint, Transport } from '../transport.js';
import { ev } from './stored-events.js';

/** What the suite needs from a transport package: its real server behind a store. */
export interface TransportContractOptions {
  /** Once per suite: the event log the transports announce (a migrated database), and how to release it. */
  setup(): Promise<{ store: EventStore; close(): Promise<void> }>;
  /** A fresh, unstarted transport over the real server, announcing appends to `store`. */
  create(store: EventStore): Transport;
  /** How long a hint or a probe may take on this machine, in ms. Default 20000. */
  waitMs?: number;
}

/**
 * The behaviour every Transport shares, as {@link Transport} states it: a
 * second start resolves without doing anything, a start after stop rejects
 * with TransportUnavailableError, a started transport is healthy and says so
 * first on health$, probe() is a real round trip, watches are counted, and
 * only watched tasks get hints. Each transport package runs it against its
 * real server.
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
  });
}

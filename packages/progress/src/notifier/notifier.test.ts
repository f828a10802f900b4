import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InMemoryEventStore } from '../in-memory-event-store.js';
import { ScriptedTransport } from '../testing/scripted-transport.js';
import type { ProbeScript } from '../testing/scripted-transport.js';
import type { NotifierInfo } from '../transport.js';
import { createNotifier } from './notifier.js';
import type { Notifier } from './notifier.js';

/**
 * The notifier's state machine (invariant 6, docs/invariants.md) against scripted transports, on
 * virtual time: the fallback window, the recovery probes and their timeouts,
 * and a transport whose health flaps while the notifier decides.
 */

const FALLBACK_AFTER_MS = 1_000;
const PROBE_TIMEOUT_MS = 500;
const RETRY = { minDelayMs: 100, maxDelayMs: 800 };
const SILENT: ProbeScript = { kind: 'silent' };
const ANSWER = { kind: 'answer', ms: 5 } as const satisfies ProbeScript;

interface Harness {
  notifier: Notifier;
  /** Every configured transport the notifier created, in order. */
  primaries: ScriptedTransport[];
  /** Every polling transport the notifier created, in order. */
  pollers: ScriptedTransport[];
  infos: NotifierInfo[];
  lines: Record<string, unknown>[];
}

function harness(
  primary: () => ScriptedTransport,
  poller: () => ScriptedTransport = () => new ScriptedTransport('polling'),
): Harness {
  const primaries: ScriptedTransport[] = [];
  const pollers: ScriptedTransport[] = [];
  const lines: Record<string, unknown>[] = [];
  const notifier = createNotifier({
    configured: 'postgres',
    store: new InMemoryEventStore(),
    createTransport: () => {
      const transport = primary();
      primaries.push(transport);
      return transport;
    },
    pollTransport: () => {
      const transport = poller();
      pollers.push(transport);
      return transport;
    },
    logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
    fallbackAfterMs: FALLBACK_AFTER_MS,
    probeTimeoutMs: PROBE_TIMEOUT_MS,
    retry: RETRY,
  });
  const infos: NotifierInfo[] = [];
  notifier.info$.subscribe((info) => infos.push(info));
  return { notifier, primaries, pollers, infos, lines };
}

/** Starts the notifier while virtual time runs, as far as `ms`. */
async function startFor(notifier: Notifier, ms: number): Promise<void> {
  const starting = notifier.start();
  await advance(ms);
  await starting;
}

/**
 * Runs virtual time `ms` ahead, then lets the promise chains that the last
 * timer started (a probe's answer reaching the switch) run to their end.
 */
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  for (let turn = 0; turn < 50; turn++) await Promise.resolve();
}

const onPrimary = (info: NotifierInfo) => info.active === 'postgres' && info.healthy && !info.fallback;
const onPolling = (info: NotifierInfo) => info.active === 'polling' && info.healthy && info.fallback;

/** A notifier that started on its configured transport, then fell back when that transport lost health. */
async function fallenBack(): Promise<{ h: Harness; primary: ScriptedTransport }> {
  const h = harness(() => new ScriptedTransport('postgres', { probes: [ANSWER] }));
  await startFor(h.notifier, ANSWER.ms);
  const primary = h.primaries[0]!;
  primary.setHealth(false);
  await advance(FALLBACK_AFTER_MS);
  expect(onPolling(h.notifier.info)).toBe(true);
  return { h, primary };
}

beforeEach(() => {
  vi.useFakeTimers();
  // No jitter: each backoff delay is its nominal value, so the schedule below is exact.
  vi.spyOn(Math, 'random').mockReturnValue(1);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('notifier state machine', () => {
  it('falls back to polling when the start probe times out, stays there while recovery probes time out, and returns after one comes back', async () => {
    const h = harness(() => new ScriptedTransport('postgres', { probes: [SILENT] }));
    await startFor(h.notifier, PROBE_TIMEOUT_MS);
    expect(h.notifier.info).toMatchObject({ active: 'polling', healthy: true, fallback: true });
    expect(h.notifier.info.reason).toMatch(/did not come back within 500 ms/);
    const primary = h.primaries[0]!;
    expect(primary.probes).toEqual([PROBE_TIMEOUT_MS]);

    // Recovery probes at 100, 200, 400, 800, 800 ms after each failure; each times out after 500 ms.
    for (const delay of [100, 200, 400, 800, 800]) {
      const probes = primary.probes.length;
      await advance(delay - 1);
      expect(primary.probes).toHaveLength(probes);
      await advance(1);
      expect(primary.probes).toHaveLength(probes + 1);
      await advance(PROBE_TIMEOUT_MS);
      expect(h.notifier.info).toMatchObject({ active: 'polling', healthy: true, fallback: true });
    }
    expect(primary.maxProbesInFlight).toBe(1);
    // The started transport is probed again, not replaced; polling was never left.
    expect(h.primaries).toHaveLength(1);
    expect(h.infos.filter((info) => info.active === 'postgres' && info.healthy)).toEqual([]);

    primary.scriptProbes(ANSWER);
    await advance(800 + ANSWER.ms);
    expect(onPrimary(h.notifier.info)).toBe(true);
    expect(h.notifier.info.reason).toMatch(/round trip verified/);
    expect(h.pollers).toHaveLength(1);
    expect(h.pollers[0]!.stopped).toBe(true);
    await h.notifier.stop();
  });

  it('keeps the configured transport while its health flaps inside the fallback window, counting the window from the latest loss', async () => {
    const h = harness(() => new ScriptedTransport('postgres', { probes: [ANSWER] }));
    await startFor(h.notifier, ANSWER.ms);
    expect(onPrimary(h.notifier.info)).toBe(true);
    const primary = h.primaries[0]!;

    for (let flap = 0; flap < 5; flap++) {
      primary.setHealth(false);
      await advance(FALLBACK_AFTER_MS - 1);
      expect(h.notifier.info).toMatchObject({ active: 'postgres', healthy: false, fallback: false });
      primary.setHealth(true);
      expect(onPrimary(h.notifier.info)).toBe(true);
    }
    expect(h.pollers).toHaveLength(0);

    primary.setHealth(false, 'listener lost');
    await advance(FALLBACK_AFTER_MS - 1);
    expect(h.pollers).toHaveLength(0);
    await advance(1);
    expect(onPolling(h.notifier.info)).toBe(true);
    expect(h.notifier.info.reason).toBe('listener lost');
    await h.notifier.stop();
  });

  it('during recovery, probes at once on each return to health, one probe at a time, and stays on polling while they time out', async () => {
    const { h, primary } = await fallenBack();
    const probesAtFallback = primary.probes.length;

    primary.scriptProbes(SILENT);
    // Back and gone again, several times, faster than a probe can time out.
    for (let flap = 0; flap < 4; flap++) {
      primary.setHealth(true);
      await advance(10);
      primary.setHealth(false);
      await advance(10);
    }
    // The first return to health probed at once, without waiting for the 100 ms backoff.
    expect(primary.probes.length).toBeGreaterThan(probesAtFallback);
    await advance(4 * PROBE_TIMEOUT_MS);
    expect(primary.maxProbesInFlight).toBe(1);
    expect(onPolling(h.notifier.info)).toBe(true);
    expect(h.infos.slice(h.infos.findIndex(onPolling)).filter(onPrimary)).toEqual([]);

    // Probes run one after another: the one in flight times out before the next goes out.
    primary.scriptProbes(ANSWER);
    primary.setHealth(true);
    await advance(PROBE_TIMEOUT_MS + ANSWER.ms);
    expect(onPrimary(h.notifier.info)).toBe(true);
    await h.notifier.stop();
  });

  it('does not call a transport healthy whose health was lost while its recovery probe was in flight', async () => {
    const { h, primary } = await fallenBack();

    // The probe comes back after 50 ms; 10 ms after it was sent, the transport loses its connection again.
    primary.scriptProbes({ kind: 'answer', ms: 50 });
    const fallbackAt = h.infos.length - 1;
    primary.setHealth(true);
    await advance(10);
    primary.setHealth(false, 'lost again');
    await advance(40);
    expect(primary.probes).toHaveLength(2);
    // The answer proves nothing about a connection lost since: polling stays, healthy, the one that delivers.
    expect(onPolling(h.notifier.info)).toBe(true);
    await advance(FALLBACK_AFTER_MS);
    expect(h.infos.slice(fallbackAt).filter((info) => info.active === 'postgres')).toEqual([]);

    primary.setHealth(true);
    await advance(50);
    expect(onPrimary(h.notifier.info)).toBe(true);
    await h.notifier.stop();
  });

  it('stays on the configured transport that came back by itself while a recovery probe failed, once polling could start', async () => {
    // The database server stops: the listener is lost and polling cannot start either. The server
    // comes back and the listener reconnects while the recovery probe sent during the outage times out.
    let databaseDown = true;
    const h = harness(
      () => new ScriptedTransport('postgres', { probes: [ANSWER] }),
      () =>
        new ScriptedTransport(
          'polling',
          databaseDown ? { startError: new Error('connect ECONNREFUSED 127.0.0.1:5432') } : {},
        ),
    );
    await startFor(h.notifier, ANSWER.ms);
    const primary = h.primaries[0]!;
    primary.scriptProbes(SILENT);
    primary.setHealth(false, 'listener lost');
    await advance(FALLBACK_AFTER_MS);
    expect(h.notifier.info).toMatchObject({ active: 'postgres', healthy: false, fallback: false });
    expect(h.pollers).toHaveLength(1);
    await advance(RETRY.minDelayMs);
    expect(primary.probes).toHaveLength(2);

    databaseDown = false;
    primary.setHealth(true);
    expect(onPrimary(h.notifier.info)).toBe(true);
    const backAt = h.infos.length - 1;
    await advance(PROBE_TIMEOUT_MS + 4 * RETRY.maxDelayMs);
    // The timed-out probe does not hand delivery to polling: the transport that works keeps it.
    expect(h.infos.slice(backAt).filter((info) => info.active === 'polling')).toEqual([]);
    expect(h.pollers).toHaveLength(1);
    expect(onPrimary(h.notifier.info)).toBe(true);
    await h.notifier.stop();
  });

  it('replaces a configured transport that cannot start with a fresh one on each retry, stopping the failed one', async () => {
    const h = harness(
      () => new ScriptedTransport('postgres', { startError: new Error('connect ECONNREFUSED 127.0.0.1:5') }),
    );
    await startFor(h.notifier, 0);
    expect(onPolling(h.notifier.info)).toBe(true);
    expect(h.notifier.info.reason).toMatch(/ECONNREFUSED/);
    await advance(100 + 200 + 400);
    expect(h.primaries).toHaveLength(4);
    expect(h.primaries.slice(0, 3).every((transport) => transport.stopped)).toBe(true);
    expect(h.pollers).toHaveLength(1);
    expect(h.lines.filter((line) => String(line.msg).startsWith('using polling as fallback'))).toHaveLength(
      1,
    );
    await h.notifier.stop();
  });
});

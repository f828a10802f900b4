import { BehaviorSubject, Subject } from 'rxjs';
import type { Hint, Transport, TransportHealth, TransportType } from '../transport.js';

/** How one call to {@link ScriptedTransport.probe} ends. */
export type ProbeScript =
  /** Comes back after `ms` (on the test's clock: a timer, fake under fake timers). */
  | { kind: 'answer'; ms: number }
  /** Never comes back: the caller's timeout decides. */
  | { kind: 'silent' }
  /** Cannot be sent. */
  | { kind: 'fail'; message: string };

/**
 * A transport whose every move the test decides: whether start() works, how
 * each probe ends (a queue of scripts; the last one repeats), and its health,
 * which the test sets at any time. It records what the notifier asked of it.
 */
export class ScriptedTransport implements Transport {
  readonly hints$ = new Subject<Hint>();
  readonly resync$ = new Subject<void>();
  readonly health = new BehaviorSubject<TransportHealth>({ healthy: false, reason: 'not started' });
  readonly health$ = this.health.asObservable();
  /** The timeout of each probe the notifier sent, in order. */
  readonly probes: number[] = [];
  /** The most probes that were in flight at once. */
  maxProbesInFlight = 0;
  readonly watched = new Set<string>();
  private probesInFlight = 0;
  started = false;
  stopped = false;
  private probeScripts: ProbeScript[];

  constructor(
    readonly type: TransportType,
    options: { startError?: Error; probes?: ProbeScript[] } = {},
  ) {
    this.startError = options.startError;
    this.probeScripts = options.probes ?? [{ kind: 'answer', ms: 1 }];
  }

  private readonly startError: Error | undefined;

  /** Replaces what the next probes do (the last script repeats). */
  scriptProbes(...scripts: ProbeScript[]): void {
    this.probeScripts = scripts;
  }

  setHealth(healthy: boolean, reason: string | null = healthy ? null : 'scripted outage'): void {
    this.health.next({ healthy, reason });
  }

  watch(taskId: string): void {
    this.watched.add(taskId);
  }

  unwatch(taskId: string): void {
    this.watched.delete(taskId);
  }

  async start(): Promise<void> {
    if (this.startError) throw this.startError;
    this.started = true;
    this.setHealth(true);
  }

  probe(timeoutMs: number): Promise<number> {
    this.probes.push(timeoutMs);
    const script = this.probeScripts.length > 1 ? this.probeScripts.shift()! : this.probeScripts[0]!;
    this.probesInFlight += 1;
    this.maxProbesInFlight = Math.max(this.maxProbesInFlight, this.probesInFlight);
    const probe = new Promise<number>((resolve, reject) => {
      const timeout = setTimeout(
        () => reject(new Error(`${this.type} probe did not come back within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const settle = (ms: number) => {
        clearTimeout(timeout);
        resolve(ms);
      };
      if (script.kind === 'answer') setTimeout(() => settle(script.ms), script.ms);
      if (script.kind === 'fail') {
        clearTimeout(timeout);
        reject(new Error(script.message));
      }
    });
    return probe.finally(() => (this.probesInFlight -= 1));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.setHealth(false, 'stopped');
  }
}

import { SINGLE_CLUSTER_NAME } from '@nodebatch/config';
import type { StoredEvent, TaskState } from '@nodebatch/progress';

/**
 * What `--follow` prints: one line per node as it finishes (and while a
 * disruption budget holds it), under a progress bar that is redrawn in place
 * on a terminal and left out otherwise. Lines are derived from events only,
 * so a follow that resumed after a gateway restart prints each line once.
 */
export class TaskView {
  /** Last budget message printed per node, so a wait repeated by each retry is printed once. */
  readonly #waiting = new Map<string, string>();
  #barShown = false;
  #simulatedShown = false;

  readonly #out: NodeJS.WritableStream;
  readonly #live: boolean;
  readonly #width: number;

  constructor(out: NodeJS.WritableStream, live: boolean, width = 30) {
    this.#out = out;
    this.#live = live;
    this.#width = width;
  }

  /** Prints the event's line (if it has one) and redraws the bar for `state` (the fold including it). */
  show(event: StoredEvent, state: TaskState): void {
    const line = this.#lineFor(event, state);
    if (line !== undefined) this.#print(line);
    if (this.#live) {
      this.#out.write(`\r${this.#bar(state)}\u001b[K`);
      this.#barShown = true;
    }
  }

  /** Clears the bar and prints the summary line. */
  finish(summary: string): void {
    this.#print(summary);
  }

  #print(line: string): void {
    if (this.#barShown) this.#out.write('\r\u001b[K');
    this.#barShown = false;
    this.#out.write(`${line}\n`);
  }

  #bar(state: TaskState): string {
    const percent = Math.floor(state.percent);
    const filled = Math.round((percent / 100) * this.#width);
    return (
      `[${'#'.repeat(filled)}${'-'.repeat(this.#width - filled)}] ${String(percent).padStart(3)}%` +
      ` ${state.done}/${state.total} nodes · ${state.succeeded} ok · ${state.failed} failed · ${state.status}`
    );
  }

  #lineFor(event: StoredEvent, state: TaskState): string | undefined {
    switch (event.type) {
      case 'TaskCreated':
        return `task ${event.taskId}: ${event.data.action} of ${state.total} node${state.total === 1 ? '' : 's'}${onCluster(state)}`;
      case 'TaskStarted':
        // Said once, before any node line: nothing this task reports happened on a real cluster.
        if (event.data.clusterMode !== 'simulated' || this.#simulatedShown) return undefined;
        this.#simulatedShown = true;
        return 'simulated cluster: no real node is changed';
      case 'NodeSucceeded':
        return `${event.data.node}: succeeded${event.data.message ? ` (${event.data.message})` : ''}`;
      case 'NodeFailed':
        return `${event.data.node}: failed: ${event.data.error}`;
      case 'NodeSkipped':
        return `${event.data.node}: skipped: ${event.data.reason}`;
      case 'NodeRetrying':
        return `${event.data.node}: attempt ${event.data.attempt} failed, retrying: ${event.data.error}`;
      case 'NodeProgress': {
        const message = event.data.message;
        if (!message || !/disruption budget/i.test(message)) return undefined;
        if (this.#waiting.get(event.data.node) === message) return undefined;
        this.#waiting.set(event.data.node, message);
        return `${event.data.node}: waiting: ${message}`;
      }
      case 'CancelRequested':
        return `cancel requested by ${event.data.by}${event.data.reason ? `: ${event.data.reason}` : ''}`;
      default:
        return undefined;
    }
  }
}

/** The last line of a followed task. */
export function summaryOf(state: TaskState): string {
  const counts = `${state.succeeded} succeeded, ${state.failed} failed, ${state.skipped} skipped of ${state.total}`;
  const where = `${onCluster(state)}${state.clusterMode === 'simulated' ? ' (simulated)' : ''}`;
  const outcome = state.outcome;
  if (outcome?.type === 'TaskFailed')
    return `task ${state.taskId} failed${where}: ${outcome.data.error} (${counts})`;
  return `task ${state.taskId} ${state.status}${where}: ${counts}`;
}

/** ` on cluster <name>` for a named cluster; nothing for the one cluster of a configuration without a list. */
function onCluster(state: TaskState): string {
  return state.cluster === null || state.cluster === SINGLE_CLUSTER_NAME
    ? ''
    : ` on cluster ${state.cluster}`;
}

/** 0 when every node succeeded, 1 otherwise (a failed node, a cancelled or failed task). */
export function exitCodeOf(state: TaskState): number {
  return state.status === 'completed' && state.succeeded === state.total ? 0 : 1;
}

import { createLogger } from '@nodebatch/config';
import type { BatchAction, NewEvent, StoredEvent, TaskState } from '@nodebatch/progress';
import { foldTask, readTaskEvents } from '@nodebatch/progress';
import type { BatchQueue, Runtime } from '@nodebatch/runtime';
import { uniqueName } from '@nodebatch/testkit';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { expect } from 'vitest';
import type { Logger } from 'pino';

/** What a test creates a batch with: the gateway's POST /api/v1/batches, without HTTP. */
interface BatchRequest {
  action: BatchAction;
  nodes: string[];
  params?: Record<string, unknown>;
  concurrency?: number;
  reason?: string;
}

/** Appends TaskCreated (as the gateway does) and enqueues the job; returns the task id. */
export async function submitBatch(
  runtime: Runtime,
  queue: BatchQueue,
  request: BatchRequest,
): Promise<string> {
  const taskId = uniqueName('task').replaceAll('_', '-');
  const created: NewEvent = {
    type: 'TaskCreated',
    data: {
      userId: 'tester',
      action: request.action,
      nodes: request.nodes,
      params: request.params ?? {},
      ...(request.concurrency !== undefined && { concurrency: request.concurrency }),
      ...(request.reason !== undefined && { reason: request.reason }),
    },
  };
  await runtime.notifier.append(taskId, [created], { expectedSeq: 0 });
  await queue.enqueue({ taskId });
  return taskId;
}

/** Waits for the task's terminal event (through the live stream), then returns the whole log and its fold. */
export async function waitForEnd(
  runtime: Runtime,
  taskId: string,
  timeoutMs = 60_000,
): Promise<{ state: TaskState; events: StoredEvent[] }> {
  await firstValueFrom(
    runtime.streams.state$(taskId).pipe(
      filter((state) => state.outcome !== null),
      timeout(timeoutMs),
    ),
  );
  const events = await readTaskEvents(runtime.store, taskId);
  return { state: foldTask(taskId, events), events };
}

/** Waits until the task's log holds at least `count` events matching `match`. */
export async function waitForEvents(
  runtime: Runtime,
  taskId: string,
  match: (event: StoredEvent) => boolean,
  count = 1,
  timeoutMs = 60_000,
): Promise<StoredEvent[]> {
  const seen: StoredEvent[] = [];
  return new Promise((resolve, reject) => {
    const subscription = runtime.streams
      .events$(taskId)
      .pipe(timeout(timeoutMs))
      .subscribe({
        next: (event) => {
          if (!match(event)) return;
          seen.push(event);
          if (seen.length >= count) {
            subscription.unsubscribe();
            resolve(seen);
          }
        },
        error: reject,
        complete: () =>
          reject(new Error(`task ${taskId} ended with ${seen.length} of ${count} matching events`)),
      });
  });
}

export function eventsOfType<T extends StoredEvent['type']>(
  events: readonly StoredEvent[],
  type: T,
): Extract<StoredEvent, { type: T }>[] {
  return events.filter((event): event is Extract<StoredEvent, { type: T }> => event.type === type);
}

/**
 * How many NodeSucceeded events the log holds for each node. The fold keeps
 * the first and ignores a repeat, so "every node succeeded once" is a count
 * over the log, not a look at the folded state.
 */
function nodeSucceededCounts(events: readonly StoredEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const event of eventsOfType(events, 'NodeSucceeded')) {
    counts.set(event.data.node, (counts.get(event.data.node) ?? 0) + 1);
  }
  return counts;
}

/** Exactly one NodeSucceeded per node of `nodes` in the log, and none for any other node. */
export function expectEachNodeSucceededOnce(events: readonly StoredEvent[], nodes: readonly string[]): void {
  const counts = nodeSucceededCounts(events);
  const wrong = [...new Set([...nodes, ...counts.keys()])]
    .map((node) => ({ node, succeeded: counts.get(node) ?? 0 }))
    .filter(({ node, succeeded }) => succeeded !== (nodes.includes(node) ? 1 : 0));
  expect(wrong, 'nodes whose NodeSucceeded count in the log is not exactly one').toEqual([]);
}

/** The configuration of one test file: its own database, queue and (optionally) Redis for the queue. */
export function testEnv(databaseUrl: string, options: { redisUrl?: string } = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    QUEUE_NAME: uniqueName('batches'),
    PROGRESS_NOTIFY_TYPE: 'postgres',
    LOG_LEVEL: 'silent',
    ...(options.redisUrl !== undefined && { REDIS_URL: options.redisUrl }),
  };
}

/** A logger at `level` whose JSON lines the test reads back from `lines`. */
export function capturingLogger(level: 'info' | 'warn' = 'info'): {
  logger: Logger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

/** The names of the nodes of a simulated cluster of `count` nodes (NODEBATCH_SIM_NODES). */
export function simulatedNodes(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `sim-node-${i + 1}`);
}

/** The variables of a simulated cluster of `count` nodes whose operations take `latencyMs` each. */
export function simulatedClusterEnv(count: number, latencyMs: number): Record<string, string> {
  return {
    NODEBATCH_CLUSTER: 'simulated',
    NODEBATCH_SIM_NODES: String(count),
    NODEBATCH_SIM_LATENCY_MS: String(latencyMs),
  };
}

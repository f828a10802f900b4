import { z } from 'zod';
import {
  IdempotencyKeyReusedError,
  InvalidEventError,
  NodebatchError,
  TaskAlreadyEndedError,
  UnknownTaskError,
} from './errors.js';
import { EventDataSchemas, isTerminalType, type EventType, type NewEvent } from './events.js';

/**
 * The rules of the event log, shared by every EventStore (PostgreSQL in
 * @nodebatch/event-store, InMemoryEventStore here): both run the same checks
 * in the same order, so they fail the same way on the same input.
 */

/** Largest `data` of one event a store accepts by default, in bytes of JSON. */
export const DEFAULT_MAX_EVENT_BYTES = 64 * 1024;

/**
 * Largest `data` of a TaskCreated event by default, in bytes of JSON: it
 * names every node of the batch, so it may be larger than progress events.
 */
export const DEFAULT_MAX_TASK_CREATED_BYTES = 1024 * 1024;

/**
 * One event's data is larger than the store accepts. The limit keeps rows
 * small enough for fast reads and for transports that carry whole events
 * (PostgreSQL NOTIFY payloads stop at 8000 bytes); large outputs belong
 * elsewhere, with a reference in the event.
 */
export class EventTooLargeError extends NodebatchError {
  readonly taskId: string;
  /** Index of the offending event in the appended batch. */
  readonly index: number;
  readonly type: string;
  readonly bytes: number;
  readonly limitBytes: number;

  constructor(taskId: string, index: number, type: string, bytes: number, limitBytes: number) {
    super(
      'EVENT_TOO_LARGE',
      `task ${JSON.stringify(taskId)}, event ${index} (${type}): data is ${bytes} bytes of JSON, over the limit of ${limitBytes}; nothing was appended`,
    );
    this.taskId = taskId;
    this.index = index;
    this.type = type;
    this.bytes = bytes;
    this.limitBytes = limitBytes;
  }
}

/** An event that passed its schema: `data` is the schema's output (defaults applied). */
export interface ValidatedEvent {
  type: EventType;
  data: unknown;
  /** The event's own time, normalized to ISO-8601 UTC; undefined when the store is to set it. */
  time: string | undefined;
}

const TaskIdSchema = z.string().min(1).max(255);
const TimeSchema = z.iso.datetime({ offset: true });

/**
 * Checks what can be checked without reading the log: the task id, each
 * event's type, data schema, time and size. Throws before anything is written.
 */
export function validateEvents(
  taskId: string,
  events: readonly NewEvent[],
  maxEventBytes: number = DEFAULT_MAX_EVENT_BYTES,
  maxTaskCreatedBytes: number = maxEventBytes,
): ValidatedEvent[] {
  if (!TaskIdSchema.safeParse(taskId).success) {
    throw new InvalidEventError(`task id ${JSON.stringify(taskId)} must be a string of 1 to 255 characters`);
  }
  if (!Array.isArray(events)) {
    throw new InvalidEventError(`task ${JSON.stringify(taskId)}: events must be an array`);
  }
  return events.map((event, index) => {
    const type = (event as { type?: unknown } | null)?.type;
    const schema =
      typeof type === 'string' && Object.hasOwn(EventDataSchemas, type)
        ? EventDataSchemas[type as EventType]
        : undefined;
    if (schema === undefined) {
      throw new InvalidEventError(
        `task ${JSON.stringify(taskId)}, event ${index}: unknown type ${JSON.stringify(type)}`,
      );
    }
    const parsed = (schema as z.ZodType).safeParse(event.data);
    if (!parsed.success) {
      throw new InvalidEventError(
        `task ${JSON.stringify(taskId)}, event ${index} (${type}): ${z.prettifyError(parsed.error)}`,
        { cause: parsed.error },
      );
    }
    let time: string | undefined;
    if (event.time !== undefined) {
      if (!TimeSchema.safeParse(event.time).success) {
        throw new InvalidEventError(
          `task ${JSON.stringify(taskId)}, event ${index} (${type}): time ${JSON.stringify(event.time)} is not an ISO-8601 date-time`,
        );
      }
      time = new Date(event.time).toISOString();
    }
    const bytes = Buffer.byteLength(JSON.stringify(parsed.data), 'utf8');
    const limit = type === 'TaskCreated' ? maxTaskCreatedBytes : maxEventBytes;
    if (bytes > limit) throw new EventTooLargeError(taskId, index, type as string, bytes, limit);
    return { type: type as EventType, data: parsed.data, time };
  });
}

/** AppendOptions.idempotencyKey, checked before anything is written; undefined when none was given. */
export function checkIdempotencyKey(taskId: string, key: string | undefined): string | undefined {
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || key.length < 1 || key.length > 200) {
    throw new InvalidEventError(
      `task ${JSON.stringify(taskId)}: idempotencyKey must be a string of 1 to 200 characters, got ${JSON.stringify(key)}`,
    );
  }
  return key;
}

/**
 * The events a batch's idempotency key found in the log, returned as the
 * append's result when they are the batch asked for (same count and types),
 * else IdempotencyKeyReusedError.
 */
export function replayedBatch<T extends { type: string }>(
  taskId: string,
  key: string,
  stored: readonly T[],
  given: readonly ValidatedEvent[],
): T[] {
  const storedTypes = stored.map((event) => event.type);
  const givenTypes = given.map((event) => event.type);
  if (storedTypes.join() !== givenTypes.join()) {
    throw new IdempotencyKeyReusedError(taskId, key, storedTypes, givenTypes);
  }
  return [...stored];
}

/** Where a task's log stands before an append: its last seq (0 for a new task), and its terminal event if it ended. */
export interface LogTail {
  lastSeq: number;
  /** The type of the task's terminal event; null while the task runs. */
  endedWith: string | null;
}

/**
 * The log's rules, checked against the task's tail under the append's lock:
 * a task starts with TaskCreated, TaskCreated comes only first, and nothing
 * follows the task's one terminal event.
 */
export function checkLogRules(taskId: string, tail: LogTail, events: readonly ValidatedEvent[]): void {
  if (tail.lastSeq === 0 && events[0]?.type !== 'TaskCreated') throw new UnknownTaskError(taskId);
  if (tail.endedWith !== null) throw new TaskAlreadyEndedError(taskId, tail.endedWith, tail.lastSeq);
  events.forEach((event, index) => {
    const before = tail.lastSeq + index;
    if (event.type === 'TaskCreated' && before > 0) {
      throw new InvalidEventError(
        `task ${JSON.stringify(taskId)}, event ${index}: TaskCreated must be the task's first event (the task has ${before} before it)`,
      );
    }
    const earlierTerminal = events.findIndex((e, i) => i < index && isTerminalType(e.type));
    if (earlierTerminal !== -1) {
      throw new TaskAlreadyEndedError(
        taskId,
        events[earlierTerminal]!.type,
        tail.lastSeq + earlierTerminal + 1,
      );
    }
  });
}

/** A paging or timing option of a store: a safe integer of at least `min`, or a RangeError naming it. */
export function checkInteger(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer of at least ${min}, got ${String(value)}`);
  }
  return value;
}

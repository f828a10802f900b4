import { EventDataSchemas, InvalidEventError, type EventType, type NewEvent } from '@nodebatch/progress';
import { z } from 'zod';
import { EventTooLargeError } from './errors.js';

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
 * Checks what can be checked without the database: the task id, each event's
 * type, data schema, time and size. Throws before anything is written.
 */
export function validateEvents(
  taskId: string,
  events: readonly NewEvent[],
  maxEventBytes: number,
  maxTaskCreatedBytes = maxEventBytes,
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

import type { HintKey, PackFrame, StoredEvent } from '@nodebatch/progress';
import { HINT_MAC_LENGTH, StoredEventSchema, eventsByTask, packPayloads } from '@nodebatch/progress';
import { z } from 'zod';

/**
 * What travels on the Pub/Sub channel. Other programs may publish on the same
 * channel, so every message is validated before it becomes a hint.
 */
type WireMessage =
  | TaskMessage
  /** A round-trip check of the channel (Transport.probe). */
  | { v: 1; kind: 'probe'; id: string }
  /**
   * Several tasks of one append transaction, each an `events` or `ref`
   * message as it would be alone; sent only with PROGRESS_COMBINED_HINTS.
   */
  | { v: 1; kind: 'tasks'; tasks: readonly TaskMessage[] };

/** What a message says of one task. */
type TaskMessage =
  /** The events of one append, inline; `mac` only from a sender with a hint key (see HintKey). */
  | { v: 1; kind: 'events'; taskId: string; seq: number; events: readonly StoredEvent[]; mac?: string }
  /** An append too large to carry: subscribers read its events from the store. */
  | { v: 1; kind: 'ref'; taskId: string; seq: number };

const taskId = z.string().min(1);
const seq = z.number().int().positive();

/**
 * The envelope alone: cheap enough to check on every message of the channel,
 * while the events themselves are validated only for watched tasks.
 */
const EventsSchema = z.object({
  v: z.literal(1),
  kind: z.literal('events'),
  taskId,
  seq,
  events: z.array(z.unknown()).min(1),
  mac: z.string().optional(),
});
const RefSchema = z.object({ v: z.literal(1), kind: z.literal('ref'), taskId, seq });
const TaskEnvelopeSchema = z.discriminatedUnion('kind', [EventsSchema, RefSchema]);

const EnvelopeSchema = z.discriminatedUnion('kind', [
  EventsSchema,
  RefSchema,
  z.object({ v: z.literal(1), kind: z.literal('probe'), id: z.string().min(1) }),
  // Each task's envelope is checked on its own (decodeTaskEnvelope): a bad one costs only its task.
  z.object({ v: z.literal(1), kind: z.literal('tasks'), tasks: z.array(z.unknown()).min(1) }),
]);

type Envelope = z.infer<typeof EnvelopeSchema>;
/** The envelope of one task's events or reference, alone or in a `tasks` message. */
export type TaskEnvelope = z.infer<typeof TaskEnvelopeSchema>;

const EventListSchema = z.array(StoredEventSchema);

type Decoded<T> = { ok: true; value: T } | { ok: false; problem: string };

export function decodeEnvelope(message: string): Decoded<Envelope> {
  let json: unknown;
  try {
    json = JSON.parse(message);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  const parsed = EnvelopeSchema.safeParse(json);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, problem: z.prettifyError(parsed.error) };
}

/** Validates one task's envelope of a `tasks` message. */
export function decodeTaskEnvelope(json: unknown): Decoded<TaskEnvelope> {
  const parsed = TaskEnvelopeSchema.safeParse(json);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, problem: z.prettifyError(parsed.error) };
}

/** Validates the events of an envelope: schema, task, and consecutive seqs ending at the announced one. */
export function decodeEvents(envelope: Extract<TaskEnvelope, { kind: 'events' }>): Decoded<StoredEvent[]> {
  const parsed = EventListSchema.safeParse(envelope.events);
  if (!parsed.success) return { ok: false, problem: z.prettifyError(parsed.error) };
  const events = parsed.data;
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    if (event.taskId !== envelope.taskId) {
      return { ok: false, problem: `event of task ${event.taskId} in a message of task ${envelope.taskId}` };
    }
    if (i > 0 && event.seq !== events[i - 1]!.seq + 1) {
      return { ok: false, problem: `seq ${event.seq} follows ${events[i - 1]!.seq}` };
    }
  }
  const last = events[events.length - 1]!;
  if (last.seq !== envelope.seq)
    return { ok: false, problem: `announces seq ${envelope.seq} but carries up to ${last.seq}` };
  return { ok: true, value: events };
}

/** Options of {@link encodeAppend}. */
interface EncodeAppendOptions {
  /** Larger messages are sent as a reference. */
  maxBytes: number;
  /** Signs inline events (PROGRESS_HINT_KEY). Default none: no `mac`. */
  key?: HintKey | undefined;
  /**
   * One `tasks` message for all tasks of the append (as many as fit in
   * `maxBytes`) instead of one message per task (PROGRESS_COMBINED_HINTS).
   * Only receivers of this version on read it. Default false.
   */
  combine?: boolean;
}

/** What `"mac":"..."` adds to a message, in bytes (base64url is ASCII). */
const MAC_FIELD_BYTES = ',"mac":""'.length + HINT_MAC_LENGTH;

/** The frame of a `tasks` message around its tasks' messages. */
const TASKS: PackFrame = { open: '{"v":1,"kind":"tasks","tasks":[', close: ']}' };

/**
 * One message per task of an append, or, combined, as few `tasks` messages
 * as fit. Above `maxBytes` a task's events are left out and subscribers read
 * them from the store: Redis would carry them, but every subscriber of the
 * channel would pay for the copy.
 */
export function encodeAppend(events: readonly StoredEvent[], options: EncodeAppendOptions): string[] {
  const messages = encodeTasks(events, options);
  return options.combine ? packPayloads(messages, TASKS, options.maxBytes) : messages;
}

function encodeTasks(events: readonly StoredEvent[], options: EncodeAppendOptions): string[] {
  const { maxBytes, key } = options;
  const messages: string[] = [];
  for (const [taskId, taskEvents] of eventsByTask(events)) {
    const seq = taskEvents[taskEvents.length - 1]!.seq;
    const inline = JSON.stringify({
      v: 1,
      kind: 'events',
      taskId,
      seq,
      events: taskEvents,
    } satisfies WireMessage);
    if (Buffer.byteLength(inline) + (key ? MAC_FIELD_BYTES : 0) > maxBytes) {
      messages.push(JSON.stringify({ v: 1, kind: 'ref', taskId, seq } satisfies WireMessage));
    } else if (key) {
      // Spliced into the text already built: the MAC covers the events, not this JSON.
      const mac = key.sign({ taskId, seq, events: taskEvents });
      messages.push(`${inline.slice(0, -1)},"mac":"${mac}"}`);
    } else {
      messages.push(inline);
    }
  }
  return messages;
}

export function encodeProbe(id: string): string {
  return JSON.stringify({ v: 1, kind: 'probe', id } satisfies WireMessage);
}

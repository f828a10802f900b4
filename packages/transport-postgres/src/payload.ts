import { z } from 'zod';
import { HINT_MAC_LENGTH, StoredEventSchema, eventsByTask, packPayloads } from '@nodebatch/progress';
import type { HintKey, PackFrame, StoredEvent } from '@nodebatch/progress';

/**
 * PostgreSQL rejects a NOTIFY payload of 8000 bytes or more ("payload string
 * too long"); the old system lost such notifications silently. Anything that
 * would not fit is sent as a reference and read from the log instead.
 */
export const MAX_PAYLOAD_BYTES = 7999;

/**
 * What travels on the channel, as compact JSON:
 * - events: `{"taskId":"t","seq":7,"events":[{"seq":6,...},{"seq":7,...}],"mac":"..."}` (taskId left
 *   out of each event; `mac` only from a sender with a hint key, see HintKey);
 * - reference: `{"taskId":"t","seq":7,"from":6}`: events `from`..`seq` are in the log;
 * - probe: `{"probe":"<id>"}`: a round trip check, ignored by anyone who did not send it;
 * - combined: `{"tasks":[<events or reference>,...]}`: several tasks of one append transaction in
 *   one notification (sent only with PROGRESS_COMBINED_HINTS; see {@link encodeTransaction}).
 */
export type Notification =
  | { kind: 'events'; taskId: string; seq: number; events: StoredEvent[]; mac?: string }
  | { kind: 'reference'; taskId: string; seq: number; from: number }
  | { kind: 'probe'; probe: string };

/** Options of {@link encodeEvents}. */
export interface EncodeEventsOptions {
  /** Signs inline events (PROGRESS_HINT_KEY). Default none: no `mac`. */
  key?: HintKey | undefined;
  /** Larger payloads are sent as a reference. Default {@link MAX_PAYLOAD_BYTES}. */
  maxBytes?: number;
}

/** What `"mac":"..."` adds to a payload, in bytes (base64url is ASCII). */
const MAC_FIELD_BYTES = ',"mac":""'.length + HINT_MAC_LENGTH;

/** Encodes the events of one append (one task, ascending seq) for pg_notify. */
export function encodeEvents(events: readonly StoredEvent[], options: EncodeEventsOptions = {}): string {
  const { key, maxBytes = MAX_PAYLOAD_BYTES } = options;
  const first = events[0];
  const last = events[events.length - 1];
  if (!first || !last) throw new RangeError('encodeEvents needs at least one event');
  const full = JSON.stringify({
    taskId: first.taskId,
    seq: last.seq,
    events: events.map(({ taskId: _taskId, ...rest }) => rest),
  });
  // Byte length, not string length: the limit is in bytes of the database encoding (UTF-8).
  const bytes = Buffer.byteLength(full, 'utf8') + (key ? MAC_FIELD_BYTES : 0);
  if (bytes > maxBytes) return JSON.stringify({ taskId: first.taskId, seq: last.seq, from: first.seq });
  if (!key) return full;
  // Spliced into the text already built: the MAC covers the events, not this JSON.
  const mac = key.sign({ taskId: first.taskId, seq: last.seq, events });
  return `${full.slice(0, -1)},"mac":"${mac}"}`;
}

/** Options of {@link encodeTransaction}. */
export interface EncodeTransactionOptions extends EncodeEventsOptions {
  /**
   * Announce the tasks of one transaction together, `{"tasks":[...]}`, in as
   * few notifications as fit. Only receivers of this version on read them:
   * turned on (PROGRESS_COMBINED_HINTS) once every process runs one. Default
   * false: one notification per task, which every version reads.
   */
  combine?: boolean;
}

const COMBINED: PackFrame = { open: '{"tasks":[', close: ']}' };

/**
 * Encodes the events of one append transaction (each task's together, in seq
 * order; several tasks from appendMany): one notification per task, or,
 * combined, as few as fit under the limit. A task's entry is what it would be
 * alone (events or a reference); a pack of one is sent in the plain format.
 */
export function encodeTransaction(
  events: readonly StoredEvent[],
  options: EncodeTransactionOptions = {},
): string[] {
  const { combine = false, maxBytes = MAX_PAYLOAD_BYTES } = options;
  const single = [...eventsByTask(events).values()].map((taskEvents) => encodeEvents(taskEvents, options));
  return combine ? packPayloads(single, COMBINED, maxBytes) : single;
}

export function encodeProbe(id: string): string {
  return JSON.stringify({ probe: id });
}

const seqSchema = z.number().int().positive();

const EnvelopeSchema = z.union([
  z.object({ probe: z.string().min(1) }).strict(),
  z.object({ taskId: z.string().min(1), seq: seqSchema, from: seqSchema }).strict(),
  z
    .object({
      taskId: z.string().min(1),
      seq: seqSchema,
      events: z.array(z.unknown()).min(1),
      mac: z.string().optional(),
    })
    .strict(),
]);

export type DecodeResult =
  | { ok: true; notification: Notification }
  /** `taskId`/`seq` are set when the envelope was readable but its events were not. */
  | { ok: false; error: string; taskId?: string; seq?: number };

/** One notification of a payload, before validation; see {@link peekPayload}. */
export type PeekedEntry = { json: unknown; taskId: string | undefined } | { error: string };

/**
 * The cheap first step: parse JSON and pick out the task id of each
 * notification it holds (one, or a combined payload's), so that those for
 * tasks nobody here watches are dropped before any schema work (a replica
 * sees every task's notifications).
 */
export function peekPayload(payload: string): { entries: PeekedEntry[] } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return { error: 'not JSON' };
  }
  if (typeof json !== 'object' || json === null) return { error: 'not a JSON object' };
  if (!('tasks' in json)) return { entries: [peekEntry(json)] };
  const tasks = (json as { tasks: unknown }).tasks;
  if (!Array.isArray(tasks) || tasks.length === 0 || Object.keys(json).length !== 1) {
    return { error: 'a combined notification has exactly one key, "tasks", a non-empty array' };
  }
  return {
    entries: tasks.map((entry: unknown, index): PeekedEntry => {
      const peeked = typeof entry === 'object' && entry !== null ? peekEntry(entry) : undefined;
      // A probe or a nested combination has no place in the list.
      return peeked?.taskId === undefined ? { error: `tasks[${index}] has no taskId` } : peeked;
    }),
  };
}

function peekEntry(json: object): { json: unknown; taskId: string | undefined } {
  const taskId = (json as { taskId?: unknown }).taskId;
  return { json, taskId: typeof taskId === 'string' ? taskId : undefined };
}

/** Validates a parsed payload completely, events included (they come from outside this process). */
export function decodeNotification(json: unknown): DecodeResult {
  const envelope = EnvelopeSchema.safeParse(json);
  if (!envelope.success) return { ok: false, error: z.prettifyError(envelope.error) };
  const value = envelope.data;
  if ('probe' in value) return { ok: true, notification: { kind: 'probe', probe: value.probe } };
  if ('from' in value) {
    if (value.from > value.seq)
      return { ok: false, error: 'from is after seq', taskId: value.taskId, seq: value.seq };
    return { ok: true, notification: { kind: 'reference', ...value } };
  }
  const events: StoredEvent[] = [];
  for (const raw of value.events) {
    const parsed = StoredEventSchema.safeParse(
      typeof raw === 'object' && raw !== null ? { ...raw, taskId: value.taskId } : raw,
    );
    if (!parsed.success) {
      return { ok: false, error: z.prettifyError(parsed.error), taskId: value.taskId, seq: value.seq };
    }
    events.push(parsed.data);
  }
  const ascending = events.every((event, i) => i === 0 || event.seq === events[i - 1]!.seq + 1);
  if (!ascending || events[events.length - 1]!.seq !== value.seq) {
    return { ok: false, error: 'events are not consecutive up to seq', taskId: value.taskId, seq: value.seq };
  }
  const { taskId, seq, mac } = value;
  return {
    ok: true,
    notification: { kind: 'events', taskId, seq, events, ...(mac === undefined ? {} : { mac }) },
  };
}

import { z } from 'zod';

/**
 * Progress events. A task's state is the fold of its events (see reducer.ts);
 * nothing else stores progress. Each schema validates `data` of one event type
 * at the edges: on append, and when reading payloads another program sent.
 */

export const BATCH_ACTIONS = ['cordon', 'uncordon', 'drain', 'label', 'taint'] as const;
export const BatchActionSchema = z.enum(BATCH_ACTIONS);
export type BatchAction = z.infer<typeof BatchActionSchema>;

const nodeName = z.string().min(1).max(253);
const count = z.number().int().nonnegative();
/** `namespace/name` of a pod. */
const podKey = z.string().min(1).max(317);

/**
 * A drain dry run's finding on one node: the pods that would be evicted (or deleted), those a
 * drain leaves (DaemonSet, mirror, long-terminating) and those that would stop it, with why.
 * Optional on NodeSucceeded: older workers sent only the message, which still says the same.
 */
export const DrainPlanSchema = z.object({
  evict: z.array(podKey),
  left: z.array(z.object({ pod: podKey, reason: z.string().min(1) })).default([]),
  blocked: z.array(z.object({ pod: podKey, reason: z.string().min(1) })).default([]),
});
export type DrainPlan = z.output<typeof DrainPlanSchema>;

export const EventDataSchemas = {
  TaskCreated: z.object({
    userId: z.string().min(1),
    action: BatchActionSchema,
    nodes: z.array(nodeName).min(1),
    params: z.record(z.string(), z.unknown()).default({}),
    concurrency: z.number().int().positive().optional(),
    /** Why (cordon and drain write it on the node with who and when). */
    reason: z.string().min(1).max(1024).optional(),
    /** The named cluster the batch runs on; absent: the only or default one. */
    cluster: z.string().min(1).max(253).optional(),
    /** The label selector the nodes were resolved from when the batch was accepted. */
    selector: z.string().max(1024).optional(),
  }),
  TaskStarted: z.object({
    workerId: z.string().optional(),
    attempt: z.number().int().positive().default(1),
    /** What the worker ran against: a real cluster, or the simulated one (said in every result). */
    clusterMode: z.enum(['kubernetes', 'simulated']).optional(),
    /** The named cluster the worker ran it on (the one TaskCreated names). */
    cluster: z.string().min(1).max(253).optional(),
  }),
  NodeStarted: z.object({ node: nodeName, attempt: z.number().int().positive().default(1) }),
  NodeProgress: z.object({ node: nodeName, done: count, total: count, message: z.string().optional() }),
  /** A retryable failure of one attempt; the node is tried again after `delayMs`. */
  NodeRetrying: z.object({
    node: nodeName,
    attempt: z.number().int().positive(),
    error: z.string(),
    delayMs: count,
  }),
  NodeSucceeded: z.object({
    node: nodeName,
    message: z.string().optional(),
    /** Drain dry runs: what the drain would do on this node (the message says it in words). */
    drainPlan: DrainPlanSchema.optional(),
  }),
  /** The node's final failure: `retryable` says whether the cause was transient (retries exhausted). */
  NodeFailed: z.object({
    node: nodeName,
    error: z.string(),
    code: z.string().optional(),
    retryable: z.boolean(),
  }),
  NodeSkipped: z.object({ node: nodeName, reason: z.string() }),
  CancelRequested: z.object({ by: z.string(), reason: z.string().optional() }),
  TaskCancelled: z.object({ succeeded: count, failed: count, skipped: count, notStarted: z.array(nodeName) }),
  TaskCompleted: z.object({ succeeded: count, failed: count, skipped: count }),
  TaskFailed: z.object({ error: z.string(), code: z.string().optional() }),
} as const;

export type EventType = keyof typeof EventDataSchemas;
export const EVENT_TYPES = Object.keys(EventDataSchemas) as EventType[];
export type EventData<T extends EventType = EventType> = z.output<(typeof EventDataSchemas)[T]>;

/** Exactly one of these ends a task; anything after it is rejected on append and ignored by the fold. */
export const TERMINAL_EVENT_TYPES = ['TaskCompleted', 'TaskCancelled', 'TaskFailed'] as const;
export type TerminalEventType = (typeof TERMINAL_EVENT_TYPES)[number];

export function isTerminalType(type: EventType): type is TerminalEventType {
  return (TERMINAL_EVENT_TYPES as readonly string[]).includes(type);
}

/** An event before it is appended: the store assigns taskId, seq, position and (unless given) time. */
export type NewEvent = { [T in EventType]: { type: T; data: EventData<T>; time?: string } }[EventType];

/** An event as stored in the log. */
export type StoredEvent = {
  [T in EventType]: {
    taskId: string;
    /** Per-task sequence number: 1, 2, 3, … without gaps. */
    seq: number;
    /** Global position in the log, increasing with commit visibility (see EventReader.readAll). */
    position: number;
    type: T;
    /** ISO-8601 timestamp. */
    time: string;
    data: EventData<T>;
  };
}[EventType];

export type StoredEventOf<T extends EventType> = Extract<StoredEvent, { type: T }>;

export const EventTypeSchema = z.enum(EVENT_TYPES as [EventType, ...EventType[]]);

/** Schema of a stored event as it travels between processes (NOTIFY payloads, Pub/Sub, HTTP). */
export const StoredEventSchema = z
  .object({
    taskId: z.string().min(1),
    seq: z.number().int().positive(),
    position: z.number().int().nonnegative(),
    type: EventTypeSchema,
    time: z.string(),
    data: z.unknown(),
  })
  .transform((event, ctx) => {
    const parsed = EventDataSchemas[event.type].safeParse(event.data);
    if (!parsed.success) {
      ctx.addIssue({ code: 'custom', message: `data of ${event.type}: ${z.prettifyError(parsed.error)}` });
      return z.NEVER;
    }
    return { ...event, data: parsed.data } as StoredEvent;
  });

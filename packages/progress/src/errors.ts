/** Base class of every error nodebatch throws on purpose; `code` is stable for callers and logs. */
export class NodebatchError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An event (or a batch of them) failed its schema; nothing of the batch was written. */
export class InvalidEventError extends NodebatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_EVENT', message, options);
  }
}

/** A transport could not connect, or lost its connection; the notifier falls back to polling. */
export class TransportUnavailableError extends NodebatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRANSPORT_UNAVAILABLE', message, options);
  }
}

/**
 * Errors of the event log, shared by every EventStore implementation
 * (PostgreSQL in @nodebatch/event-store, InMemoryEventStore here) so that
 * readers such as ProgressStreams and the gateway can tell them apart
 * whichever store they are given.
 */

/** A read or append named a task that was never created (no TaskCreated event). */
export class UnknownTaskError extends NodebatchError {
  readonly taskId: string;

  constructor(taskId: string, options?: { cause?: unknown }) {
    super(
      'UNKNOWN_TASK',
      `unknown task ${JSON.stringify(taskId)}: no event was ever appended for it`,
      options,
    );
    this.taskId = taskId;
  }
}

/** An append's `expectedSeq` no longer matches the task's last seq: someone else appended first. */
export class StaleSequenceError extends NodebatchError {
  readonly taskId: string;
  readonly expectedSeq: number;
  readonly actualSeq: number;

  constructor(taskId: string, expectedSeq: number, actualSeq: number, options?: { cause?: unknown }) {
    super(
      'STALE_SEQUENCE',
      `task ${JSON.stringify(taskId)}: expected last seq ${expectedSeq} but it is ${actualSeq}; read the new events and decide again`,
      options,
    );
    this.taskId = taskId;
    this.expectedSeq = expectedSeq;
    this.actualSeq = actualSeq;
  }
}

/** The task already has its terminal event; an append after it (or a second terminal event) is refused. */
export class TaskAlreadyEndedError extends NodebatchError {
  readonly taskId: string;
  /** The type of the terminal event already in the log (or earlier in the refused batch). */
  readonly terminalType: string;
  readonly terminalSeq: number;

  constructor(taskId: string, terminalType: string, terminalSeq: number, options?: { cause?: unknown }) {
    super(
      'TASK_ALREADY_ENDED',
      `task ${JSON.stringify(taskId)} already ended with ${terminalType} at seq ${terminalSeq}; nothing can be appended after it`,
      options,
    );
    this.taskId = taskId;
    this.terminalType = terminalType;
    this.terminalSeq = terminalSeq;
  }
}

/**
 * An append carried the fence of a worker's run (the attempt of its
 * TaskStarted) but a later run has started since: the job was taken over,
 * typically after the first worker stalled past its queue lock. The stale
 * worker must stop (invariant 9); the new run owns the task.
 */
export class SupersededAttemptError extends NodebatchError {
  readonly taskId: string;
  /** The attempt the refused append belongs to. */
  readonly fence: number;
  /** The attempt of the latest TaskStarted in the log. */
  readonly currentAttempt: number;

  constructor(taskId: string, fence: number, currentAttempt: number, options?: { cause?: unknown }) {
    super(
      'SUPERSEDED_ATTEMPT',
      `task ${JSON.stringify(taskId)}: append of attempt ${fence} refused, attempt ${currentAttempt} has started since; this run lost the task and must stop`,
      options,
    );
    this.taskId = taskId;
    this.fence = fence;
    this.currentAttempt = currentAttempt;
  }
}

/**
 * An append carried the idempotency key of an earlier batch of the task but
 * other events: a key names one batch, so the caller reused a key by mistake.
 */
export class IdempotencyKeyReusedError extends NodebatchError {
  readonly taskId: string;
  readonly idempotencyKey: string;

  constructor(taskId: string, idempotencyKey: string, stored: readonly string[], given: readonly string[]) {
    super(
      'IDEMPOTENCY_KEY_REUSED',
      `task ${JSON.stringify(taskId)}: idempotency key ${JSON.stringify(idempotencyKey)} names a batch of [${stored.join(', ')}] already stored, not [${given.join(', ')}]; use a new key for each batch`,
    );
    this.taskId = taskId;
    this.idempotencyKey = idempotencyKey;
  }
}

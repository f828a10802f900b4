import { NodebatchError } from '@nodebatch/progress';

/** What a GatewayError may carry besides its code, status and message. */
export interface GatewayErrorOptions {
  cause?: unknown;
  /** The request field at fault (`body.nodes`, `header.last-event-id`); sent as `field`. */
  field?: string;
  /** Seconds a client should wait before retrying; sent as Retry-After. */
  retryAfterSeconds?: number;
  /** The policy rule that refused the request; sent as `rule`. */
  rule?: string;
}

/** Base class of the gateway's own errors; `statusCode` is the HTTP status a request failing with it gets. */
export class GatewayError extends NodebatchError {
  readonly statusCode: number;
  readonly field: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly rule: string | undefined;

  constructor(code: string, statusCode: number, message: string, options: GatewayErrorOptions = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.statusCode = statusCode;
    this.field = options.field;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.rule = options.rule;
  }
}

/** The gateway was started without a JWT secret and without AUTH_DISABLED=true. */
export class AuthConfigurationError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AUTH_NOT_CONFIGURED', 500, message, options);
  }
}

/** A request carried no token, or one that did not verify. The message never contains the token. */
export class AuthenticationError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAUTHENTICATED', 401, message, options);
  }
}

/** The task does not exist or belongs to another user: both look the same to the caller. */
export class TaskNotFoundError extends GatewayError {
  constructor(taskId: string, options?: { cause?: unknown }) {
    super('TASK_NOT_FOUND', 404, `task ${JSON.stringify(taskId)} not found`, options);
  }
}

/** A cancel for a task that already has its terminal event. */
export class TaskEndedConflictError extends GatewayError {
  constructor(taskId: string, terminalType: string, options?: { cause?: unknown }) {
    super(
      'TASK_ALREADY_ENDED',
      409,
      `task ${JSON.stringify(taskId)} already ended with ${terminalType}; it cannot be cancelled`,
      options,
    );
  }
}

/** The request body or query failed validation; `field` names the first offending field. */
export class InvalidRequestError extends GatewayError {
  declare readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_REQUEST', 400, `${field}: ${message}`, { ...options, field });
  }
}

/** The policy refused the request; the message says which rule and what it requires. */
export class PolicyDeniedError extends GatewayError {
  constructor(rule: string, message: string) {
    super('FORBIDDEN', 403, message, { rule });
  }
}

/** The task existed, but retention deleted its events; only the audit trail remembers it. */
export class TaskGoneError extends GatewayError {
  constructor(taskId: string) {
    super(
      'TASK_GONE',
      410,
      `task ${JSON.stringify(taskId)} ended long enough ago that its events were deleted (event retention); the audit trail keeps its outcome`,
    );
  }
}

/** A request over a size limit of the gateway; the message names the limit. */
export class PayloadTooLargeError extends GatewayError {
  constructor(field: string, message: string) {
    super('PAYLOAD_TOO_LARGE', 413, `${field}: ${message}`, { field });
  }
}

/** A per-user limit (streams, requests per minute) is reached. */
export class TooManyRequestsError extends GatewayError {
  constructor(code: string, message: string, retryAfterSeconds: number) {
    super(code, 429, message, { retryAfterSeconds });
  }
}

/** The gateway as a whole is at a capacity limit (streams in total). */
export class GatewayBusyError extends GatewayError {
  constructor(code: string, message: string, retryAfterSeconds: number) {
    super(code, 503, message, { retryAfterSeconds });
  }
}

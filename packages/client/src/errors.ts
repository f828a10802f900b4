import { NodebatchError, describeCauses } from '@nodebatch/progress';

/**
 * Errors of the client. An answer of the gateway with an error status becomes
 * an `ApiError` subclass chosen by status, carrying the gateway's own `code`,
 * `field` (when it named one) and `message`; callers branch on the class or
 * on `code`, which is stable.
 */

/** What the gateway sends with an error status: `{code, message, field?}`. */
export interface ApiErrorBody {
  code: string;
  message: string;
  field?: string;
}

/** The gateway answered with an error status. */
export class ApiError extends NodebatchError {
  /** HTTP status of the answer. */
  readonly status: number;
  /** The request field the gateway named (`body.nodes[2]`), for 400s. */
  readonly field: string | undefined;
  /** `GET /api/v1/tasks/…`: which request got this answer. */
  readonly request: string;

  constructor(status: number, body: ApiErrorBody, request: string, options?: { cause?: unknown }) {
    super(body.code, `${request}: ${body.message} (HTTP ${status} ${body.code})`, options);
    this.status = status;
    this.field = body.field;
    this.request = request;
  }
}

/** 400: the request failed validation; `field` names the first offending field. */
export class InvalidRequestError extends ApiError {}

/** 401: no token, or one the gateway did not accept (after one refresh, when a token function is set). */
export class UnauthenticatedError extends ApiError {}

/** 403: the token is valid but its role or the policy does not allow this. */
export class ForbiddenError extends ApiError {}

/** 404: no such task (or one of another user, which looks the same), or no such route on this gateway. */
export class NotFoundError extends ApiError {}

/** 409: e.g. cancelling a task that already ended. */
export class ConflictError extends ApiError {}

/** 410: the task's events were deleted by retention. */
export class GoneError extends ApiError {}

/** 413: the batch is larger than the gateway accepts. */
export class PayloadTooLargeError extends ApiError {}

/** 429: a rate limit or connection cap; `retryAfterMs` when the gateway said. */
export class RateLimitedError extends ApiError {
  readonly retryAfterMs: number | undefined;

  constructor(
    status: number,
    body: ApiErrorBody,
    request: string,
    retryAfterMs: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(status, body, request, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** 5xx: the gateway or something behind it (database, queue) is unavailable. */
export class ServerError extends ApiError {}

/** No answer at all: connection refused, reset, DNS failure, timeout. `url` is the gateway tried. */
export class GatewayUnreachableError extends NodebatchError {
  readonly url: string;

  constructor(url: string, request: string, options?: { cause?: unknown }) {
    super(
      'GATEWAY_UNREACHABLE',
      `${request}: no answer from ${url}: ${describeCauses(options?.cause)}`,
      options,
    );
    this.url = url;
  }
}

/** The gateway answered something that is not what the API promises (not JSON, a field missing, an invalid event). */
export class InvalidResponseError extends NodebatchError {
  constructor(request: string, problem: string, options?: { cause?: unknown }) {
    super('INVALID_RESPONSE', `${request}: unexpected answer: ${problem}`, options);
  }
}

/** What a watch had seen when it gave up, for the error and for a caller that wants to resume later. */
export interface WatchProgress {
  taskId: string;
  /** Seq of the last event delivered; 0 when none was. */
  lastSeq: number;
  /** Type and time of that event. */
  lastEvent: { type: string; time: string } | null;
}

/**
 * `watchTask` could not reach any gateway for longer than its `giveUpAfterMs`.
 * Resume later with `watchTask(taskId, { after: error.lastSeq })`.
 */
export class WatchGaveUpError extends NodebatchError {
  readonly taskId: string;
  readonly lastSeq: number;
  /** How long it kept trying, ms. */
  readonly triedForMs: number;
  readonly attempts: number;

  constructor(
    progress: WatchProgress,
    triedForMs: number,
    attempts: number,
    urls: readonly string[],
    cause: unknown,
  ) {
    const last = progress.lastEvent
      ? `the last event seen was seq ${progress.lastSeq} (${progress.lastEvent.type} at ${progress.lastEvent.time})`
      : `no event was seen (resuming after seq ${progress.lastSeq})`;
    super(
      'WATCH_GAVE_UP',
      `gave up following task ${progress.taskId} after trying for ${(triedForMs / 1000).toFixed(1)} s ` +
        `(${attempts} attempts on ${urls.join(', ')}); ${last}; the last error: ${describeCauses(cause)}`,
      { cause },
    );
    this.taskId = progress.taskId;
    this.lastSeq = progress.lastSeq;
    this.triedForMs = triedForMs;
    this.attempts = attempts;
  }
}

/** The error class for a gateway's error answer. */
export function apiErrorFor(
  status: number,
  body: ApiErrorBody,
  request: string,
  retryAfter: string | null,
): ApiError {
  switch (status) {
    case 400:
      return new InvalidRequestError(status, body, request);
    case 401:
      return new UnauthenticatedError(status, body, request);
    case 403:
      return new ForbiddenError(status, body, request);
    case 404:
      return new NotFoundError(status, body, request);
    case 409:
      return new ConflictError(status, body, request);
    case 410:
      return new GoneError(status, body, request);
    case 413:
      return new PayloadTooLargeError(status, body, request);
    case 429:
      return new RateLimitedError(status, body, request, parseRetryAfter(retryAfter));
    default:
      return status >= 500 ? new ServerError(status, body, request) : new ApiError(status, body, request);
  }
}

/**
 * Reads an error answer's body as the gateway's `{code, message, field?}`;
 * anything else (a proxy's HTML page) keeps its first characters as the message.
 */
export async function readApiError(response: Response, request: string): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  let body: ApiErrorBody = {
    code: `HTTP_${response.status}`,
    message: text.slice(0, 300) || response.statusText,
  };
  try {
    const parsed = JSON.parse(text) as Partial<Record<keyof ApiErrorBody, unknown>>;
    if (typeof parsed.code === 'string' && typeof parsed.message === 'string') {
      body = {
        code: parsed.code,
        message: parsed.message,
        ...(typeof parsed.field === 'string' ? { field: parsed.field } : {}),
      };
    }
  } catch {
    // Not JSON: keep the text.
  }
  return apiErrorFor(response.status, body, request, response.headers.get('retry-after'));
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

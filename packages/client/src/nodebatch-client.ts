import { initialTaskState, reduceTask, type StoredEvent, type TaskState } from '@nodebatch/progress';
import { scan, type Observable } from 'rxjs';
import type {
  AuditEntry,
  AuditPage,
  BatchAccepted,
  BatchRequest,
  CancelAccepted,
  ListAuditQuery,
  ListNodesQuery,
  ListTasksQuery,
  NodeInfo,
  TaskSummary,
} from './api-types.js';
import {
  GatewayUnreachableError,
  InvalidResponseError,
  UnauthenticatedError,
  readApiError,
} from './errors.js';
import { TokenSource, authorizationHeader, type TokenProvider } from './token-source.js';
import { watchTaskEvents, type WatchOptions, type WatchTaskOptions } from './watch-task.js';

export interface NodebatchClientOptions {
  /**
   * The gateway's base URL, or the URLs of several replicas. Requests and
   * streams go to the one that answered last (the first at start) and move to
   * the next when it does not answer.
   */
  url: string | readonly string[];
  /** A bearer token, or a function returning a current one (called again once after a 401). Default: none. */
  token?: TokenProvider;
  /** How watchTask resumes and when it gives up; see WatchOptions for the defaults. */
  watch?: WatchOptions;
  /** The fetch to use. Default: the global one (Node 20+, browsers). */
  fetch?: typeof fetch;
}

interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /**
   * Whether a gateway that gave no answer may be replaced by the next one.
   * True for reads and cancel (repeating them is harmless); a submit moves on
   * only when the connection was refused, so a batch is never sent twice.
   */
  idempotent: boolean;
}

/**
 * A client of the nodebatch gateway API for other services, scripts and the
 * browser (fetch and streams only). Errors are ApiError subclasses carrying
 * the gateway's code, field and message, or GatewayUnreachableError.
 */
export class NodebatchClient {
  readonly urls: readonly string[];
  readonly #tokens: TokenSource;
  readonly #fetch: typeof fetch | undefined;
  readonly #watch: WatchOptions;
  #preferred = 0;

  constructor(options: NodebatchClientOptions) {
    const urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (urls.length === 0) throw new TypeError('NodebatchClient: `url` names no gateway');
    this.urls = urls.map((url, i) => {
      try {
        return new URL(url).href;
      } catch {
        throw new TypeError(`NodebatchClient: url[${i}] ${JSON.stringify(url)} is not an absolute URL`);
      }
    });
    this.#tokens = new TokenSource(options.token);
    this.#fetch = options.fetch;
    this.#watch = options.watch ?? {};
  }

  /** Starts a batch; resolves with its task id once the gateway accepted it (202). */
  async submitBatch(batch: BatchRequest): Promise<BatchAccepted> {
    const body = await this.#request('POST', '/api/v1/batches', { body: batch, idempotent: false });
    return { taskId: requireString(body, 'taskId', 'POST /api/v1/batches') };
  }

  /** The task's state (the fold of its events). */
  async getTask(taskId: string): Promise<TaskState> {
    const request = `/api/v1/tasks/${encodeURIComponent(taskId)}`;
    const body = await this.#request('GET', request, { idempotent: true });
    requireString(body, 'taskId', `GET ${request}`);
    requireString(body, 'status', `GET ${request}`);
    return body as unknown as TaskState;
  }

  /** The caller's tasks (every task for an admin), newest first. */
  async listTasks(query: ListTasksQuery = {}): Promise<TaskSummary[]> {
    const body = await this.#request('GET', '/api/v1/tasks', { query: { ...query }, idempotent: true });
    return requireArray(body, 'tasks', 'GET /api/v1/tasks') as TaskSummary[];
  }

  /** The cluster's nodes, optionally filtered by a label selector. */
  async listNodes(query: ListNodesQuery = {}): Promise<NodeInfo[]> {
    // The gateway pages the listing as `{items, continue?}`: follow it to the end.
    const nodes: NodeInfo[] = [];
    let next: string | undefined;
    do {
      const page = next === undefined ? query : { ...query, continue: next };
      const body = await this.#request('GET', '/api/v1/nodes', { query: page, idempotent: true });
      nodes.push(...(requireArray(body, 'items', 'GET /api/v1/nodes') as NodeInfo[]));
      const token = body.continue;
      if (token !== undefined && token !== null && typeof token !== 'string')
        throw new InvalidResponseError('GET /api/v1/nodes', '`continue` is not a string');
      next = token ? token : undefined;
    } while (next !== undefined);
    return nodes;
  }

  /** One page of the audit trail, newest first (admins); pass `nextCursor` as `before` for the next. */
  async listAudit(query: ListAuditQuery = {}): Promise<AuditPage> {
    const body = await this.#request('GET', '/api/v1/audit', { query: { ...query }, idempotent: true });
    const entries = requireArray(body, 'entries', 'GET /api/v1/audit') as AuditEntry[];
    const next = body.nextCursor;
    if (next !== null && typeof next !== 'string') {
      throw new InvalidResponseError('GET /api/v1/audit', '`nextCursor` is neither a string nor null');
    }
    return { entries, nextCursor: next };
  }

  /** Asks the task to stop; its TaskCancelled event follows once the worker stopped (a 409 ConflictError when it already ended). */
  async cancelTask(taskId: string, options: { reason?: string } = {}): Promise<CancelAccepted> {
    const request = `/api/v1/tasks/${encodeURIComponent(taskId)}/cancel`;
    const body = await this.#request('POST', request, {
      idempotent: true,
      ...(options.reason !== undefined && { body: { reason: options.reason } }),
    });
    return { taskId: requireString(body, 'taskId', `POST ${request}`), status: String(body.status) };
  }

  /**
   * The task's events, each once and in seq order, completing after the
   * terminal event (TaskCompleted, TaskCancelled or TaskFailed); see
   * watchTaskEvents for how it resumes and when it gives up.
   */
  watchTask(taskId: string, options: WatchTaskOptions = {}): Observable<StoredEvent> {
    return watchTaskEvents(
      {
        urls: this.urls,
        tokens: this.#tokens,
        fetch: this.#fetch,
        options: this.#watch,
        preferredUrl: () => this.#preferred,
        answered: (index) => (this.#preferred = index),
      },
      taskId,
      options,
    );
  }

  /** The task's state after each of its events (the core's fold), from the first event to the terminal one. */
  watchTaskState(taskId: string): Observable<TaskState> {
    return this.watchTask(taskId).pipe(scan(reduceTask, initialTaskState(taskId)));
  }

  async #request(
    method: 'GET' | 'POST',
    path: string,
    options: RequestOptions,
  ): Promise<Record<string, unknown>> {
    const request = `${method} ${path}`;
    const query = Object.entries(options.query ?? {}).filter(
      (entry): entry is [string, string | number] => entry[1] !== undefined && entry[1] !== '',
    );
    let refreshed = false;
    let lastError: unknown;
    for (let tried = 0; tried < this.urls.length;) {
      const index = (this.#preferred + tried) % this.urls.length;
      const url = new URL(path, this.urls[index]);
      for (const [key, value] of query) url.searchParams.set(key, String(value));
      const token = await this.#tokens.token();
      let response: Response;
      try {
        response = await (this.#fetch ?? fetch)(url, {
          method,
          headers: {
            accept: 'application/json',
            ...authorizationHeader(token),
            ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        });
      } catch (error) {
        lastError = new GatewayUnreachableError(url.origin, request, { cause: error });
        if (!options.idempotent && !connectionRefused(error)) throw lastError;
        tried += 1;
        continue;
      }
      this.#preferred = index;
      if (response.ok) {
        const text = await response.text();
        try {
          const body = JSON.parse(text) as unknown;
          if (typeof body !== 'object' || body === null) throw new Error('not a JSON object');
          return body as Record<string, unknown>;
        } catch (error) {
          throw new InvalidResponseError(
            request,
            `HTTP ${response.status} with a body that is not a JSON object`,
            {
              cause: error,
            },
          );
        }
      }
      const error = await readApiError(response, request);
      if (error instanceof UnauthenticatedError && this.#tokens.refreshable && !refreshed) {
        refreshed = true;
        await this.#tokens.refresh(token);
        continue;
      }
      throw error;
    }
    throw lastError;
  }
}

/** Node's fetch puts the socket error's code in `cause`; browsers say nothing, so they never move on. */
function connectionRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  return cause?.code === 'ECONNREFUSED';
}

function requireString(body: Record<string, unknown>, field: string, request: string): string {
  const value = body[field];
  if (typeof value !== 'string') throw new InvalidResponseError(request, `\`${field}\` is not a string`);
  return value;
}

function requireArray(body: Record<string, unknown>, field: string, request: string): unknown[] {
  const value = body[field];
  if (!Array.isArray(value)) throw new InvalidResponseError(request, `\`${field}\` is not an array`);
  return value;
}

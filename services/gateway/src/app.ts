import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifyWebsocket from '@fastify/websocket';
import { TASK_SUMMARY_STATUSES } from '@nodebatch/event-store';
import { InvalidNodeInputError, validateBatchParams } from '@nodebatch/kube';
import { TaskAlreadyEndedError, causeChain, loadTaskState, withTimeout } from '@nodebatch/progress';
import type { StoredEventOf } from '@nodebatch/progress';
import Fastify, { LogController } from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { z } from 'zod';
import { canAccess } from './auth.js';
import type { Authenticator, Principal } from './auth.js';
import { BatchAcceptedSchema, BatchRequestSchema, formatFieldPath } from './batch-request.js';
import type { BatchRequest } from './batch-request.js';
import { GatewayError, InvalidRequestError, TaskEndedConflictError, TaskNotFoundError } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayServices } from './services.js';
import { TaskOwnerCache } from './task-owner-cache.js';
import { SSE_DEFAULTS, streamEventsOverSse } from './sse-stream.js';
import type { OpenStream, SseStreamOptions } from './sse-stream.js';
import { WS_DEFAULTS, runWebSocketSession } from './ws-session.js';
import type { WebSocketSessionOptions } from './ws-session.js';

/** Name of the cookie the page sets so that EventSource and WebSocket carry the token. */
export const TOKEN_COOKIE = 'nodebatch_token';

export interface GatewayAppOptions {
  services: GatewayServices;
  authenticator: Authenticator;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Origins allowed to open the WebSocket besides the gateway's own (ALLOWED_ORIGINS). */
  allowedOrigins: readonly string[];
  sse?: SseStreamOptions;
  ws?: WebSocketSessionOptions;
  /** Milliseconds /readyz waits for the database. Default 2000. */
  readinessTimeoutMs?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Stream routes: EventSource and browsers' WebSocket cannot set headers, so the token may come as ?token= or cookie. */
    tokenInUrlOrCookie?: boolean;
    /** Routes anyone may call (health, metrics, the page). */
    public?: boolean;
  }
}

const TaskParamsSchema = z.object({ id: z.string().min(1).max(200) });
const StreamQuerySchema = z.object({
  after: z.coerce.number().int().nonnegative().optional(),
  token: z.string().optional(),
});
const ListQuerySchema = z.object({
  status: z.enum(TASK_SUMMARY_STATUSES).optional(),
  limit: z.coerce.number().int().positive().max(500).optional(),
});

const PAGE_HTML = readFileSync(new URL('../public/index.html', import.meta.url), 'utf8');

/**
 * The gateway's HTTP application: routes, authentication and error mapping.
 * It owns no connection; `startGateway` builds the services and listens.
 */
export async function buildGatewayApp(options: GatewayAppOptions) {
  const { services, authenticator, metrics } = options;
  const logger = options.logger;
  const sseOptions = { ...SSE_DEFAULTS, ...options.sse };
  const wsOptions = { ...WS_DEFAULTS, ...options.ws };
  const readinessTimeoutMs = options.readinessTimeoutMs ?? 2000;
  const openStreams = new Set<OpenStream>();

  const app = Fastify({
    loggerInstance: logger,
    // One line per request would drown the log with 2,000 stream clients, and
    // request URLs may carry ?token=.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(fastifyCookie);
  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });

  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public || request.routeOptions.url === undefined) return;
    request.principal = await authenticator.authenticate(
      bearerToken(request, config.tokenInUrlOrCookie ?? false),
    );
  });

  app.setErrorHandler((error, request, reply) => sendError(error, request, reply, logger));
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  app.addHook('preClose', async () => {
    for (const stream of [...openStreams]) stream.end();
  });

  const owners = new TaskOwnerCache({ readTask: (taskId, opts) => services.tasks.readTask(taskId, opts) });

  /** The task's TaskCreated event, if the principal may see the task; otherwise a 404 for both cases. */
  async function authorizeTask(taskId: string, principal: Principal): Promise<StoredEventOf<'TaskCreated'>> {
    const created = await owners.created(taskId);
    if (!created || !canAccess(principal, created.data.userId)) throw new TaskNotFoundError(taskId);
    return created;
  }

  app.get('/healthz', { config: { public: true } }, () => ({ status: 'ok' }));

  app.get('/readyz', { config: { public: true } }, async (_request, reply) => {
    const notifier = services.notifier.info;
    try {
      await withTimeout(services.database.query('SELECT 1'), readinessTimeoutMs, 'database check');
    } catch (err) {
      const reason = `database unavailable: ${(err as Error).message}`;
      return reply
        .code(503)
        .send({ status: 'unavailable', reason, database: { ok: false, error: reason }, notifier });
    }
    return { status: 'ready', reason: null, database: { ok: true }, notifier };
  });

  app.get('/metrics', { config: { public: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/', { config: { public: true } }, (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header(
        'content-security-policy',
        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      )
      .send(PAGE_HTML),
  );

  app.post(
    '/api/v1/batches',
    { schema: { body: BatchRequestSchema, response: { 202: BatchAcceptedSchema } } },
    async (request, reply) => {
      const principal = request.principal!;
      const body = request.body;
      const params = checkBatchParams(body.action, body.params);
      const taskId = randomUUID();
      await services.notifier.append(
        taskId,
        [
          {
            type: 'TaskCreated',
            data: {
              userId: principal.userId,
              action: body.action,
              nodes: body.nodes,
              params,
              ...(body.concurrency === undefined ? {} : { concurrency: body.concurrency }),
            },
          },
        ],
        { expectedSeq: 0 },
      );
      try {
        await services.queue.enqueue({ taskId });
      } catch (err) {
        // The task exists in the log but no worker will ever see it: end it
        // so that nobody waits for it, and tell the caller.
        request.log.error({ err, taskId }, 'could not enqueue a batch; marking the task failed');
        await services.notifier
          .append(taskId, [
            {
              type: 'TaskFailed',
              data: { error: 'the job queue is unavailable', code: 'QUEUE_UNAVAILABLE' },
            },
          ])
          .catch((appendErr: unknown) =>
            request.log.error({ err: appendErr, taskId }, 'could not mark the task failed'),
          );
        throw new GatewayError('QUEUE_UNAVAILABLE', 503, 'the job queue is unavailable; try again later', {
          cause: err,
        });
      }
      request.log.info(
        { taskId, userId: principal.userId, action: body.action, nodes: body.nodes.length },
        'batch accepted',
      );
      return reply.code(202).send({ taskId });
    },
  );

  app.get('/api/v1/tasks', { schema: { querystring: ListQuerySchema } }, async (request) => {
    const principal = request.principal!;
    const tasks = await services.tasks.listTasks({
      ...(principal.role === 'admin' ? {} : { userId: principal.userId }),
      ...(request.query.status ? { status: request.query.status } : {}),
      ...(request.query.limit ? { limit: request.query.limit } : {}),
    });
    return { tasks };
  });

  app.get('/api/v1/tasks/:id', { schema: { params: TaskParamsSchema } }, async (request) => {
    await authorizeTask(request.params.id, request.principal!);
    return loadTaskState(services.tasks, request.params.id);
  });

  app.post('/api/v1/tasks/:id/cancel', { schema: { params: TaskParamsSchema } }, async (request, reply) => {
    const principal = request.principal!;
    const taskId = request.params.id;
    await authorizeTask(taskId, principal);
    try {
      await services.notifier.append(taskId, [{ type: 'CancelRequested', data: { by: principal.userId } }]);
    } catch (err) {
      if (err instanceof TaskAlreadyEndedError)
        throw new TaskEndedConflictError(taskId, err.terminalType, { cause: err });
      throw err;
    }
    request.log.info({ taskId, by: principal.userId }, 'cancel requested');
    return reply.code(202).send({ taskId, status: 'cancelling' });
  });

  app.get(
    '/api/v1/tasks/:id/events',
    {
      schema: { params: TaskParamsSchema, querystring: StreamQuerySchema },
      config: { tokenInUrlOrCookie: true },
    },
    async (request, reply) => {
      const taskId = request.params.id;
      await authorizeTask(taskId, request.principal!);
      // EventSource sends Last-Event-ID when it reconnects to the URL it first
      // opened, so the header is newer than a ?after= in that URL.
      const after = parseLastEventId(request.headers['last-event-id']) ?? request.query.after ?? 0;
      reply.hijack();
      const stream = streamEventsOverSse(
        {
          response: reply.raw,
          events$: services.streams.events$(taskId, { after }),
          options: sseOptions,
          metrics,
          logger: request.log.child({ taskId }),
        },
        (closed) => openStreams.delete(closed),
      );
      openStreams.add(stream);
    },
  );

  app.get(
    '/api/v1/progress/ws',
    {
      websocket: true,
      schema: { querystring: StreamQuerySchema },
      config: { tokenInUrlOrCookie: true },
      preValidation: async (request, reply) => {
        if (!originAllowed(request, options.allowedOrigins)) {
          await reply.code(403).send({
            code: 'ORIGIN_NOT_ALLOWED',
            message: `origin ${JSON.stringify(request.headers.origin)} may not open a WebSocket; add it to ALLOWED_ORIGINS`,
          });
        }
      },
    },
    (socket, request) => {
      const close = runWebSocketSession({
        socket,
        connection: request.raw.socket,
        principal: request.principal!,
        authorize: async (taskId, principal) => {
          await authorizeTask(taskId, principal);
        },
        events$: (taskId, after) => services.streams.events$(taskId, after === undefined ? {} : { after }),
        options: wsOptions,
        metrics,
        logger: request.log,
      });
      const stream: OpenStream = { end: close };
      openStreams.add(stream);
      socket.on('close', () => openStreams.delete(stream));
    },
  );

  return app;
}

/** The action's params as the worker will read them; a 400 naming the field when they are wrong. */
function checkBatchParams(action: BatchRequest['action'], params: unknown): Record<string, unknown> {
  try {
    return validateBatchParams(action, params ?? {}) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof InvalidNodeInputError) {
      const first = err.issues[0];
      throw new InvalidRequestError(`body.${first?.path ?? 'params'}`, first?.message ?? err.message, {
        cause: err,
      });
    }
    throw err;
  }
}

function bearerToken(request: FastifyRequest, urlOrCookie: boolean): string | undefined {
  const header = request.headers.authorization;
  if (header) return /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  if (!urlOrCookie) return undefined;
  const query = request.query as { token?: unknown } | undefined;
  if (typeof query?.token === 'string' && query.token) return query.token;
  return request.cookies[TOKEN_COOKIE];
}

function parseLastEventId(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  return Number(text.trim());
}

/**
 * Browsers always send Origin on a WebSocket upgrade and do not apply CORS to
 * it, so this check is what stops another site from using a visitor's cookie.
 * Clients without an Origin (not browsers) authenticate with their token.
 */
function originAllowed(request: FastifyRequest, allowedOrigins: readonly string[]): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  if (allowedOrigins.includes(origin) || allowedOrigins.includes('*')) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function sendError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  logger: Logger,
): FastifyReply {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((issue) => ({
      field: formatFieldPath(
        error.validationContext ?? 'request',
        issue.instancePath
          .split('/')
          .filter(Boolean)
          .map((key) => (/^\d+$/.test(key) ? Number(key) : key)),
      ),
      message: issue.message ?? 'invalid',
    }));
    const first = issues[0] ?? { field: 'request', message: 'invalid' };
    return reply.code(400).send({
      code: 'INVALID_REQUEST',
      field: first.field,
      message: `${first.field}: ${first.message}`,
      issues,
    });
  }
  if (error instanceof InvalidRequestError) {
    return reply.code(400).send({ code: error.code, field: error.field, message: error.message });
  }
  if (error instanceof GatewayError) {
    if (error.statusCode >= 500) request.log.error({ err: error }, error.message);
    return reply.code(error.statusCode).send({ code: error.code, message: error.message });
  }
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = (error as { code?: unknown }).code;
    return reply
      .code(status)
      .send({ code: typeof code === 'string' ? code : 'BAD_REQUEST', message: (error as Error).message });
  }
  if (isDatabaseUnavailable(error)) {
    request.log.warn(
      { err: error, route: request.routeOptions.url },
      'request failed: the database is unavailable',
    );
    return reply
      .code(503)
      .header('retry-after', '5')
      .send({ code: 'DATABASE_UNAVAILABLE', message: 'the database is unavailable; try again shortly' });
  }
  logger.error({ err: error, method: request.method, route: request.routeOptions.url }, 'request failed');
  return reply.code(500).send({ code: 'INTERNAL', message: 'internal error' });
}

/** Connection refused/lost/timed out, or PostgreSQL shutting down (57P0x) or a connection exception (08xxx). */
function isDatabaseUnavailable(error: unknown): boolean {
  for (const current of causeChain(error)) {
    if (!(current instanceof Error)) continue;
    const code = (current as { code?: unknown }).code;
    if (
      typeof code === 'string' &&
      (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH)$/.test(code) || /^(57P0|08)/.test(code))
    ) {
      return true;
    }
    if (/timeout exceeded when trying to connect|Connection terminated/i.test(current.message)) return true;
  }
  return false;
}

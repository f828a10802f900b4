import { UnknownTaskError } from '@nodebatch/progress';
import type { FastifyRequest } from 'fastify';
import { tap } from 'rxjs';
import { z } from 'zod';
import { InvalidRequestError } from '../errors.js';
import { authorizeTask } from '../gateway-context.js';
import type { GatewayContext, GatewayPlugin } from '../gateway-context.js';
import { streamEventsOverSse } from '../sse-stream.js';
import type { OpenStream, SseStreamOptions } from '../sse-stream.js';
import { MAX_SEQ, runWebSocketSession } from '../ws-session.js';
import type { WebSocketSessionOptions } from '../ws-session.js';
import { TaskParamsSchema } from './tasks.js';

interface StreamsPluginOptions {
  context: GatewayContext;
  sse: Required<SseStreamOptions>;
  ws: Required<WebSocketSessionOptions>;
  /** Origins allowed to open the WebSocket besides the gateway's own (ALLOWED_ORIGINS). */
  allowedOrigins: readonly string[];
}

const StreamQuerySchema = z.object({
  // Seqs are PostgreSQL integers: a larger `after` is a mistake, not a query.
  after: z.coerce.number().int().min(0).max(MAX_SEQ).optional(),
  token: z.string().optional(),
});

declare module 'fastify' {
  interface FastifyRequest {
    /** Gives back the stream slot taken for this request (WebSocket upgrades). */
    releaseStream?: () => void;
  }
}

/** Progress streams: Server-Sent Events per task and one WebSocket carrying any number of tasks. */
export const streamsPlugin: GatewayPlugin<StreamsPluginOptions> = async (app, options) => {
  const { context } = options;
  const { services, metrics, openStreams, owners, streamLimiter } = context;

  /** The task's events; a task found gone mid-stream is forgotten so the reconnect answers 410. */
  const taskEvents$ = (taskId: string, after: number | undefined) =>
    services.streams.events$(taskId, after === undefined ? {} : { after }).pipe(
      tap({
        error: (err: unknown) => {
          if (err instanceof UnknownTaskError) owners.forget(taskId);
        },
      }),
    );

  app.get(
    '/api/v1/tasks/:id/events',
    {
      schema: { params: TaskParamsSchema, querystring: StreamQuerySchema },
      config: { tokenInUrlOrCookie: true },
    },
    async (request, reply) => {
      const taskId = request.params.id;
      const principal = request.principal!;
      await authorizeTask(context, taskId, principal);
      // EventSource sends Last-Event-ID when it reconnects to the URL it first
      // opened, so the header is newer than a ?after= in that URL.
      const after = lastEventId(request) ?? request.query.after ?? 0;
      const release = streamLimiter.acquire(principal.userId);
      reply.hijack();
      const stream = streamEventsOverSse(
        {
          response: reply.raw,
          events$: taskEvents$(taskId, after),
          options: options.sse,
          metrics,
          logger: request.log.child({ taskId }),
        },
        (closed) => {
          openStreams.delete(closed);
          release();
        },
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
          return;
        }
        // Taken before the upgrade so that a refusal is an HTTP 429/503 the client can read.
        request.releaseStream = streamLimiter.acquire(request.principal!.userId);
      },
    },
    (socket, request) => {
      const release = request.releaseStream ?? (() => {});
      const close = runWebSocketSession({
        socket,
        connection: request.raw.socket,
        principal: request.principal!,
        authorize: async (taskId, principal) => {
          await authorizeTask(context, taskId, principal);
        },
        events$: taskEvents$,
        takeSubscribe: (userId) => context.subscribes.take(userId),
        options: options.ws,
        metrics,
        logger: request.log,
      });
      const stream: OpenStream = { end: close };
      openStreams.add(stream);
      socket.on('close', () => {
        openStreams.delete(stream);
        release();
      });
    },
  );
};

/**
 * Last-Event-ID as a seq. A value that is not one is a 400 naming the header,
 * except from a browser's EventSource (it cannot set headers, so it carries
 * its token in the URL or a cookie): it only echoes ids we sent and cannot be
 * told to change, so a bad one came from something in between, and the safe
 * answer is the whole stream (the page folds from the start).
 */
function lastEventId(request: FastifyRequest): number | undefined {
  const value = request.headers['last-event-id'];
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^\d{1,10}$/.test(text) && Number(text) <= MAX_SEQ) return Number(text);
  if (request.tokenSource === 'query' || request.tokenSource === 'cookie') return 0;
  throw new InvalidRequestError('header.last-event-id', `expected an integer 0-${MAX_SEQ} (a seq)`);
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

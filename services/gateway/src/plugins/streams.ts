import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { authorizeTask } from '../gateway-context.js';
import type { GatewayContext, GatewayPlugin } from '../gateway-context.js';
import { streamEventsOverSse } from '../sse-stream.js';
import type { OpenStream, SseStreamOptions } from '../sse-stream.js';
import { runWebSocketSession } from '../ws-session.js';
import type { WebSocketSessionOptions } from '../ws-session.js';
import { TaskParamsSchema } from './tasks.js';

export interface StreamsPluginOptions {
  context: GatewayContext;
  sse: Required<SseStreamOptions>;
  ws: Required<WebSocketSessionOptions>;
  /** Origins allowed to open the WebSocket besides the gateway's own (ALLOWED_ORIGINS). */
  allowedOrigins: readonly string[];
}

const StreamQuerySchema = z.object({
  after: z.coerce.number().int().nonnegative().optional(),
  token: z.string().optional(),
});

/** Progress streams: Server-Sent Events per task and one WebSocket carrying any number of tasks. */
export const streamsPlugin: GatewayPlugin<StreamsPluginOptions> = async (app, options) => {
  const { context } = options;
  const { services, metrics, openStreams } = context;

  app.get(
    '/api/v1/tasks/:id/events',
    {
      schema: { params: TaskParamsSchema, querystring: StreamQuerySchema },
      config: { tokenInUrlOrCookie: true },
    },
    async (request, reply) => {
      const taskId = request.params.id;
      await authorizeTask(context, taskId, request.principal!);
      // EventSource sends Last-Event-ID when it reconnects to the URL it first
      // opened, so the header is newer than a ?after= in that URL.
      const after = parseLastEventId(request.headers['last-event-id']) ?? request.query.after ?? 0;
      reply.hijack();
      const stream = streamEventsOverSse(
        {
          response: reply.raw,
          events$: services.streams.events$(taskId, { after }),
          options: options.sse,
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
          await authorizeTask(context, taskId, principal);
        },
        events$: (taskId, after) => services.streams.events$(taskId, after === undefined ? {} : { after }),
        options: options.ws,
        metrics,
        logger: request.log,
      });
      const stream: OpenStream = { end: close };
      openStreams.add(stream);
      socket.on('close', () => openStreams.delete(stream));
    },
  );
};

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

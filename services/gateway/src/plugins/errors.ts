import { isDatabaseUnavailable } from '@nodebatch/progress';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { formatFieldPath } from '../batch-request.js';
import { GatewayError, InvalidRequestError } from '../errors.js';

/**
 * Error mapping for every route: `{code, message}` bodies, with `field` when
 * one field is at fault. Client mistakes are 4xx and never logged as errors;
 * a database outage is 503 with Retry-After; anything else is a 500 logged
 * once, without details in the body.
 */
export const errorsPlugin = fp(
  async (app: FastifyInstance): Promise<void> => {
    app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
    app.setNotFoundHandler((request, reply) =>
      reply
        .code(404)
        .send({ code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
    );
  },
  { name: 'nodebatch-errors' },
);

function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
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
    if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
    return reply.code(error.statusCode).send({
      code: error.code,
      ...(error.field === undefined ? {} : { field: error.field }),
      ...(error.rule === undefined ? {} : { rule: error.rule }),
      message: error.message,
    });
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
  request.log.error(
    { err: error, method: request.method, route: request.routeOptions.url },
    'request failed',
  );
  return reply.code(500).send({ code: 'INTERNAL', message: 'internal error' });
}

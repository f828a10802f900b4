import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Authenticator, Principal } from '../auth.js';

/** Name of the cookie the page sets so that EventSource and WebSocket carry the token. */
export const TOKEN_COOKIE = 'nodebatch_token';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** Where the token came from: a browser's EventSource can only use `query` or `cookie`. */
    tokenSource: 'header' | 'query' | 'cookie' | null;
  }
  interface FastifyContextConfig {
    /** Stream routes: EventSource and browsers' WebSocket cannot set headers, so the token may come as ?token= or cookie. */
    tokenInUrlOrCookie?: boolean;
    /** Routes anyone may call (health, metrics, the page). */
    public?: boolean;
  }
}

interface AuthenticationPluginOptions {
  authenticator: Authenticator;
}

/**
 * Sets `request.principal` on every route that is not `public`, before the
 * route's own validation, and answers 401 when the token is missing or bad.
 */
export const authenticationPlugin = fp(
  async (app: FastifyInstance, options: AuthenticationPluginOptions): Promise<void> => {
    app.decorateRequest('principal', null);
    app.decorateRequest('tokenSource', null);
    app.addHook('onRequest', async (request) => {
      const config = request.routeOptions.config;
      if (config.public || request.routeOptions.url === undefined) return;
      // A cookie travels with every request a browser makes, including a
      // cross-site form's POST: it is accepted on GET streams only, and every
      // state-changing route needs the Authorization header.
      const urlOrCookie = (config.tokenInUrlOrCookie ?? false) && request.method === 'GET';
      const { token, source } = bearerToken(request, urlOrCookie);
      request.tokenSource = source;
      request.principal = await options.authenticator.authenticate(token);
    });
  },
  { name: 'nodebatch-authentication', dependencies: ['@fastify/cookie'] },
);

/** The request's token and where it came from; the cookie and ?token= only when `urlOrCookie`. */
export function bearerToken(
  request: FastifyRequest,
  urlOrCookie: boolean,
): { token: string | undefined; source: FastifyRequest['tokenSource'] } {
  const header = request.headers.authorization;
  if (header) return { token: /^Bearer\s+(\S+)$/i.exec(header)?.[1], source: 'header' };
  if (!urlOrCookie) return { token: undefined, source: null };
  const query = request.query as { token?: unknown } | undefined;
  if (typeof query?.token === 'string' && query.token) return { token: query.token, source: 'query' };
  const cookie = request.cookies[TOKEN_COOKIE];
  return { token: cookie, source: cookie === undefined ? null : 'cookie' };
}

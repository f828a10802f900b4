import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Authenticator, Principal } from '../auth.js';

/** Name of the cookie the page sets so that EventSource and WebSocket carry the token. */
export const TOKEN_COOKIE = 'nodebatch_token';

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

export interface AuthenticationPluginOptions {
  authenticator: Authenticator;
}

/**
 * Sets `request.principal` on every route that is not `public`, before the
 * route's own validation, and answers 401 when the token is missing or bad.
 */
export const authenticationPlugin = fp(
  async (app: FastifyInstance, options: AuthenticationPluginOptions): Promise<void> => {
    app.decorateRequest('principal', null);
    app.addHook('onRequest', async (request) => {
      const config = request.routeOptions.config;
      if (config.public || request.routeOptions.url === undefined) return;
      // A cookie travels with every request a browser makes, including a
      // cross-site form's POST: it is accepted on GET streams only, and every
      // state-changing route needs the Authorization header.
      const urlOrCookie = (config.tokenInUrlOrCookie ?? false) && request.method === 'GET';
      request.principal = await options.authenticator.authenticate(bearerToken(request, urlOrCookie));
    });
  },
  { name: 'nodebatch-authentication', dependencies: ['@fastify/cookie'] },
);

function bearerToken(request: FastifyRequest, urlOrCookie: boolean): string | undefined {
  const header = request.headers.authorization;
  if (header) return /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  if (!urlOrCookie) return undefined;
  const query = request.query as { token?: unknown } | undefined;
  if (typeof query?.token === 'string' && query.token) return query.token;
  return request.cookies[TOKEN_COOKIE];
}

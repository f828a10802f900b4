import { jwtVerify } from 'jose';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AuthConfigurationError, AuthenticationError } from './errors.js';

export type Role = 'admin' | 'user';

/** Who makes a request: `sub` of the token and its role. */
export interface Principal {
  userId: string;
  role: Role;
}

/** Turns a bearer token into a Principal. */
export interface Authenticator {
  /** True in demo mode: every request is the admin user `demo`. */
  readonly disabled: boolean;
  /** Rejects with AuthenticationError when the token is missing or does not verify. */
  authenticate(token: string | undefined): Promise<Principal>;
}

export interface AuthenticatorOptions {
  /** HS256 secret (AUTH_JWT_SECRET). Required unless `disabled`. */
  jwtSecret?: string | undefined;
  /** AUTH_DISABLED=true: no token needed, every request is `demo` with role admin. */
  disabled: boolean;
  logger: Logger;
}

export const DEMO_PRINCIPAL: Principal = Object.freeze({ userId: 'demo', role: 'admin' });

const ClaimsSchema = z.object({
  sub: z.string().min(1),
  role: z.enum(['admin', 'user']).default('user'),
});

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  if (options.disabled) {
    options.logger.warn(
      'authentication is disabled (AUTH_DISABLED=true): every request acts as the admin user "demo"; never expose this gateway',
    );
    return { disabled: true, authenticate: () => Promise.resolve(DEMO_PRINCIPAL) };
  }
  if (!options.jwtSecret) {
    throw new AuthConfigurationError(
      'the gateway needs AUTH_JWT_SECRET (HS256 secret used to verify bearer tokens); set it, or set AUTH_DISABLED=true for a local demo',
    );
  }
  const key = new TextEncoder().encode(options.jwtSecret);
  return {
    disabled: false,
    async authenticate(token) {
      if (!token) throw new AuthenticationError('a bearer token is required');
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'] }));
      } catch (err) {
        // jose's message says why (signature, expiry) and never includes the token.
        throw new AuthenticationError(`invalid token: ${(err as Error).message}`, { cause: err });
      }
      const claims = ClaimsSchema.safeParse(payload);
      if (!claims.success) {
        throw new AuthenticationError('invalid token: needs a string "sub" and a "role" of admin or user');
      }
      return { userId: claims.data.sub, role: claims.data.role };
    },
  };
}

/** May `principal` see and cancel a task created by `ownerId`? */
export function canAccess(principal: Principal, ownerId: string): boolean {
  return principal.role === 'admin' || principal.userId === ownerId;
}

import { ROLES } from '@nodebatch/config';
import type { RoleName } from '@nodebatch/config';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import { AuthConfigurationError, AuthenticationError } from './errors.js';

export type Role = RoleName;

/** Who makes a request: the user claim of the token and its role. */
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
  /** AUTH_DISABLED=true: no token needed, every request is `demo` with role admin. */
  disabled: boolean;
  /** HS256 secret (AUTH_JWT_SECRET), at least 32 bytes. Required unless `disabled` or `jwksUrl`. */
  jwtSecret?: string | undefined;
  /** OIDC (AUTH_JWKS_URL): RS256/ES256 tokens verified with the provider's published keys. */
  jwksUrl?: string | undefined;
  /** Required `iss` (AUTH_JWT_ISSUER). Default: not checked. */
  issuer?: string | undefined;
  /** Required `aud` (AUTH_JWT_AUDIENCE). Default: not checked. */
  audience?: string | undefined;
  /** Longest accepted exp - iat (or exp - now without iat), seconds. Default 86400. */
  maxTokenLifetimeSeconds?: number;
  /** Clock difference tolerated for exp, nbf and iat, seconds. Default 30. */
  clockToleranceSeconds?: number;
  /** Claim naming the user. Default `sub` (OIDC providers: often `preferred_username`). */
  userClaim?: string;
  /** Claim holding the role. Default `role`. */
  roleClaim?: string;
  /** Claim holding a list of groups, mapped to roles by `groupRoles`. Default: none. */
  groupsClaim?: string | undefined;
  /** Group name to role. Default `{}`. */
  groupRoles?: Readonly<Record<string, Role>>;
  /** Role of a token that names none and is in no mapped group. Default `viewer`. */
  defaultRole?: Role;
  /**
   * Shortest time between two fetches of the JWKS when a token names an
   * unknown key (a rotation), ms. Default 30000 (jose's default).
   */
  jwksCooldownMs?: number;
  /** Clock for exp/nbf checks. Default: the system clock. */
  now?: () => Date;
  logger: Logger;
}

export const DEMO_PRINCIPAL: Principal = Object.freeze({ userId: 'demo', role: 'admin' });

/** HS256 keys shorter than this can be brute-forced offline from one captured token. */
export const MIN_JWT_SECRET_BYTES = 32;

const ROLE_RANK: Readonly<Record<Role, number>> = { viewer: 0, operator: 1, admin: 2 };

/** True when `role` carries at least the rights of `required`. */
export function roleAtLeast(role: Role, required: Role): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[required];
}

/** A role claim as tokens spell it; `user` is the older name of `operator`. */
export function parseRole(value: unknown): Role | undefined {
  if (typeof value !== 'string') return undefined;
  const name = value.trim().toLowerCase();
  if (name === 'user') return 'operator';
  return (ROLES as readonly string[]).includes(name) ? (name as Role) : undefined;
}

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  if (options.disabled) {
    options.logger.warn(
      'authentication is disabled (AUTH_DISABLED=true): every request acts as the admin user "demo"; never expose this gateway',
    );
    return { disabled: true, authenticate: () => Promise.resolve(DEMO_PRINCIPAL) };
  }
  if (!options.jwtSecret && !options.jwksUrl) {
    throw new AuthConfigurationError(
      'the gateway needs AUTH_JWT_SECRET (HS256 secret used to verify bearer tokens) or AUTH_JWKS_URL (OIDC); set one, or set AUTH_DISABLED=true for a local demo',
    );
  }
  if (options.jwtSecret && Buffer.byteLength(options.jwtSecret, 'utf8') < MIN_JWT_SECRET_BYTES) {
    throw new AuthConfigurationError(
      `AUTH_JWT_SECRET is ${Buffer.byteLength(options.jwtSecret, 'utf8')} bytes; it must be at least ${MIN_JWT_SECRET_BYTES} bytes (for example: openssl rand -base64 48)`,
    );
  }
  const secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
  const jwks: JWTVerifyGetKey | undefined = options.jwksUrl
    ? createRemoteJWKSet(new URL(options.jwksUrl), {
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
      })
    : undefined;
  const maxLifetime = options.maxTokenLifetimeSeconds ?? 86_400;
  const tolerance = options.clockToleranceSeconds ?? 30;
  const userClaim = options.userClaim ?? 'sub';
  const roleClaim = options.roleClaim ?? 'role';
  const groupRoles = options.groupRoles ?? {};
  const defaultRole = options.defaultRole ?? 'viewer';
  const now = options.now ?? (() => new Date());

  const verify = async (token: string): Promise<JWTPayload> => {
    const verifyOptions = {
      ...(options.issuer ? { issuer: options.issuer } : {}),
      ...(options.audience ? { audience: options.audience } : {}),
      clockTolerance: tolerance,
      requiredClaims: ['exp'],
      currentDate: now(),
    };
    // The header says which kind of key signed the token; each kind is
    // checked only against its own algorithms (no HS256 with a public key).
    const alg = decodeProtectedHeader(token).alg;
    if (alg === 'HS256' && secret) {
      return (await jwtVerify(token, secret, { ...verifyOptions, algorithms: ['HS256'] })).payload;
    }
    if (jwks && (alg === 'RS256' || alg === 'ES256')) {
      return (await jwtVerify(token, jwks, { ...verifyOptions, algorithms: ['RS256', 'ES256'] })).payload;
    }
    const accepted = [...(secret ? ['HS256'] : []), ...(jwks ? ['RS256', 'ES256'] : [])];
    throw new Error(`algorithm ${JSON.stringify(alg)} is not accepted (accepted: ${accepted.join(', ')})`);
  };

  const roleOf = (payload: JWTPayload): Role => {
    if (payload[roleClaim] !== undefined) {
      const role = parseRole(payload[roleClaim]);
      if (!role) {
        throw new AuthenticationError(
          `invalid token: claim "${roleClaim}" must be one of ${ROLES.join(', ')} (or user)`,
        );
      }
      return role;
    }
    const groups = options.groupsClaim ? payload[options.groupsClaim] : undefined;
    let best: Role | undefined;
    for (const group of Array.isArray(groups) ? groups : typeof groups === 'string' ? [groups] : []) {
      const mapped = typeof group === 'string' ? groupRoles[group] : undefined;
      if (mapped && (!best || roleAtLeast(mapped, best))) best = mapped;
    }
    return best ?? defaultRole;
  };

  return {
    disabled: false,
    async authenticate(token) {
      if (!token) throw new AuthenticationError('a bearer token is required');
      let payload: JWTPayload;
      try {
        payload = await verify(token);
      } catch (err) {
        // jose's message says why (signature, expiry, missing exp) and never includes the token.
        throw new AuthenticationError(`invalid token: ${(err as Error).message}`, { cause: err });
      }
      const lifetime = (payload.exp ?? 0) - (payload.iat ?? Math.floor(now().getTime() / 1000));
      if (lifetime > maxLifetime) {
        throw new AuthenticationError(
          `invalid token: it is valid for ${lifetime} s, longer than the ${maxLifetime} s AUTH_MAX_TOKEN_LIFETIME_SECONDS allows`,
        );
      }
      const user = payload[userClaim];
      if (typeof user !== 'string' || user === '') {
        throw new AuthenticationError(`invalid token: needs a non-empty string claim "${userClaim}"`);
      }
      return { userId: user, role: roleOf(payload) };
    },
  };
}

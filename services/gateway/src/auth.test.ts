import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';

type KeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createAuthenticator } from './auth.js';
import { AuthConfigurationError, AuthenticationError } from './errors.js';

const SECRET = 'a-test-secret-of-enough-length-0123456789';

function sign(claims: Record<string, unknown>, secret = SECRET, expiresIn = '5m'): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

function captureLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe('createAuthenticator', () => {
  it('refuses to start with a secret shorter than 32 bytes, naming the variable', () => {
    const { logger } = captureLogger();
    expect(() => createAuthenticator({ disabled: false, jwtSecret: 'x'.repeat(31), logger })).toThrow(
      /AUTH_JWT_SECRET is 31 bytes; it must be at least 32 bytes/,
    );
    expect(() => createAuthenticator({ disabled: false, jwtSecret: 'x'.repeat(32), logger })).not.toThrow();
  });

  it('checks iss and aud when configured, and tolerates a small clock difference only', async () => {
    const { logger } = captureLogger();
    const auth = createAuthenticator({
      jwtSecret: SECRET,
      disabled: false,
      issuer: 'https://idp.example',
      audience: 'nodebatch',
      clockToleranceSeconds: 30,
      logger,
    });
    const token = (iss: string, aud: string, expiresIn: string) =>
      new SignJWT({ sub: 'alice', role: 'operator' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(iss)
        .setAudience(aud)
        .setExpirationTime(expiresIn)
        .sign(new TextEncoder().encode(SECRET));
    expect(await auth.authenticate(await token('https://idp.example', 'nodebatch', '5m'))).toEqual({
      userId: 'alice',
      role: 'operator',
    });
    await expect(auth.authenticate(await token('https://evil.example', 'nodebatch', '5m'))).rejects.toThrow(
      /iss/,
    );
    await expect(auth.authenticate(await token('https://idp.example', 'other', '5m'))).rejects.toThrow(/aud/);
    // Expired 10 s ago: within the tolerance. Two minutes ago: not.
    expect(await auth.authenticate(await token('https://idp.example', 'nodebatch', '-10s'))).toBeTruthy();
    await expect(auth.authenticate(await token('https://idp.example', 'nodebatch', '-2m'))).rejects.toThrow(
      /exp/,
    );
  });

  it('verifies OIDC tokens (RS256, ES256) with the keys of a JWKS URL, follows a key rotation and maps groups to roles', async () => {
    const first = await generateKeyPair('RS256');
    const second = await generateKeyPair('ES256');
    const published = async (key: KeyLike, kid: string, alg: string): Promise<JWK> => ({
      ...(await exportJWK(key)),
      kid,
      alg,
      use: 'sig',
    });
    let keys: JWK[] = [await published(first.publicKey, 'k1', 'RS256')];
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const { logger } = captureLogger();
      const auth = createAuthenticator({
        disabled: false,
        jwksUrl: `http://127.0.0.1:${port}/jwks`,
        jwksCooldownMs: 0,
        issuer: 'https://keycloak.example/realms/ops',
        userClaim: 'preferred_username',
        groupsClaim: 'groups',
        groupRoles: { 'sre-admins': 'admin', developers: 'operator' },
        logger,
      });
      const oidcToken = (key: KeyLike, kid: string, alg: string, groups: string[]) =>
        new SignJWT({ preferred_username: 'dana', groups })
          .setProtectedHeader({ alg, kid })
          .setSubject('f81d4fae-7dec-11d0-a765-00a0c91e6bf6')
          .setIssuer('https://keycloak.example/realms/ops')
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(key);
      const before = await oidcToken(first.privateKey, 'k1', 'RS256', ['developers']);
      expect(await auth.authenticate(before)).toEqual({ userId: 'dana', role: 'operator' });

      // The provider rotates: the old key is withdrawn, a new one published.
      keys = [await published(second.publicKey, 'k2', 'ES256')];
      const after = await oidcToken(second.privateKey, 'k2', 'ES256', ['developers', 'sre-admins']);
      expect(await auth.authenticate(after)).toEqual({ userId: 'dana', role: 'admin' });
      const stale = await oidcToken(first.privateKey, 'k1', 'RS256', ['developers']);
      await expect(auth.authenticate(stale)).rejects.toThrow(AuthenticationError);
      // No group mapped, no role claim: the default role, viewer.
      expect(await auth.authenticate(await oidcToken(second.privateKey, 'k2', 'ES256', ['guests']))).toEqual({
        userId: 'dana',
        role: 'viewer',
      });
      // An HS256 token is not accepted by a gateway configured only for OIDC.
      await expect(auth.authenticate(await sign({ sub: 'alice', role: 'admin' }))).rejects.toThrow(
        /algorithm "HS256" is not accepted/,
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses to start without a secret unless auth is disabled', () => {
    const { logger } = captureLogger();
    expect(() => createAuthenticator({ disabled: false, logger })).toThrow(AuthConfigurationError);
    expect(() => createAuthenticator({ disabled: false, logger })).toThrow(
      /AUTH_JWT_SECRET.*AUTH_JWKS_URL.*AUTH_DISABLED=true/,
    );
  });

  it('in demo mode treats every request as the admin "demo" and warns once', async () => {
    const { logger, lines } = captureLogger();
    const auth = createAuthenticator({ disabled: true, logger });
    expect(await auth.authenticate(undefined)).toEqual({ userId: 'demo', role: 'admin' });
    expect(await auth.authenticate('anything')).toEqual({ userId: 'demo', role: 'admin' });
    expect(lines.filter((line) => line.level === 40)).toHaveLength(1);
  });

  it('reads sub and role from a valid token; user is operator, and no role is viewer', async () => {
    const { logger } = captureLogger();
    const auth = createAuthenticator({ jwtSecret: SECRET, disabled: false, logger });
    expect(await auth.authenticate(await sign({ sub: 'alice', role: 'admin' }))).toEqual({
      userId: 'alice',
      role: 'admin',
    });
    expect(await auth.authenticate(await sign({ sub: 'carol', role: 'user' }))).toEqual({
      userId: 'carol',
      role: 'operator',
    });
    expect(await auth.authenticate(await sign({ sub: 'bob' }))).toEqual({ userId: 'bob', role: 'viewer' });
  });

  it('rejects a missing token, a bad signature, an expired token and bad claims without echoing the token', async () => {
    const { logger } = captureLogger();
    const auth = createAuthenticator({ jwtSecret: SECRET, disabled: false, logger });
    await expect(auth.authenticate(undefined)).rejects.toThrow(AuthenticationError);
    const forged = await sign({ sub: 'alice', role: 'admin' }, 'another-secret-another-secret-0123');
    const error = await auth.authenticate(forged).then(
      () => new Error('a forged token was accepted'),
      (err: unknown) => err as Error,
    );
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toMatch(/signature/);
    expect(error.message).not.toContain(forged);
    await expect(auth.authenticate(await sign({ sub: 'alice' }, SECRET, '-1m'))).rejects.toThrow(/exp/);
    await expect(auth.authenticate(await sign({ sub: 'alice', role: 'root' }))).rejects.toThrow(/role/);
    await expect(auth.authenticate('not.a.jwt')).rejects.toThrow(AuthenticationError);
  });
});

import { SignJWT } from 'jose';
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
  it('refuses to start without a secret unless auth is disabled', () => {
    const { logger } = captureLogger();
    expect(() => createAuthenticator({ disabled: false, logger })).toThrow(AuthConfigurationError);
    expect(() => createAuthenticator({ disabled: false, logger })).toThrow(
      /AUTH_JWT_SECRET.*AUTH_DISABLED=true/,
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

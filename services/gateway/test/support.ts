import { loadConfig } from '@nodebatch/config';
import type { NodebatchConfig } from '@nodebatch/config';
import { createRuntime } from '@nodebatch/runtime';
import type { Runtime } from '@nodebatch/runtime';
import { uniqueName } from '@nodebatch/testkit';
import { SignJWT } from 'jose';
import pino from 'pino';
import type { Logger } from 'pino';
import { startGateway } from '../src/gateway.js';
import type { GatewayHandle, StartGatewayOptions } from '../src/gateway.js';

export const JWT_SECRET = 'gateway-test-secret-0123456789abcdef';

/** A signed HS256 token as an identity provider would issue it. */
export function tokenFor(
  sub: string,
  role: 'admin' | 'operator' | 'viewer' | 'user' = 'user',
  secret = JWT_SECRET,
): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

function testLogger(): Logger {
  return pino({ level: process.env.NODEBATCH_TEST_LOG_LEVEL ?? 'silent' });
}

/** Configuration of a gateway on `databaseUrl`, as the environment would give it. */
export function testConfig(databaseUrl: string, env: Record<string, string> = {}): NodebatchConfig {
  return loadConfig({
    env: {
      DATABASE_URL: databaseUrl,
      PROGRESS_NOTIFY_TYPE: 'postgres',
      PORT: '0',
      AUTH_JWT_SECRET: JWT_SECRET,
      QUEUE_NAME: uniqueName('gwq'),
      LOG_LEVEL: 'silent',
      ...env,
    },
    cwd: '/',
  }).config;
}

export function startTestGateway(
  config: NodebatchConfig,
  options: Omit<StartGatewayOptions, 'config' | 'logger'> = {},
): Promise<GatewayHandle> {
  return startGateway({ config, logger: testLogger(), host: '127.0.0.1', ...options });
}

/** Another process's view of the log (what a worker does): appends through its own notifier. */
export function startProducer(config: NodebatchConfig): Promise<Runtime> {
  return createRuntime({ config, logger: testLogger() });
}

/** Parsed JSON of a response; tests assert on its fields directly. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary fields
export type ResponseBody = any;

export async function api(
  gateway: GatewayHandle,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: ResponseBody; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${gateway.url}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (metrics, the page): the text is the body.
  }
  return { status: response.status, body, headers: response.headers };
}

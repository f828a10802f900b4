import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { SignJWT } from 'jose';
import type { StoredEvent } from '@nodebatch/progress';
import WebSocket from 'ws';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../services/cli/src/main.ts', import.meta.url));

export const JWT_SECRET = 'e2e-gateway-secret-0123456789abcdef';

export function tokenFor(
  sub: string,
  role: 'admin' | 'operator' | 'user' | 'viewer' = 'user',
): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

/** A nodebatch service running as its own process, as in production. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The JSON line the command prints once it is up ({gatewayUrl, port} or {workerId}). */
  readonly ready: Record<string, unknown>;
  /** The last lines it wrote, for failure messages. */
  output(): string;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/**
 * Spawns `nodebatch <command>` from source (no build needed) with `env` on
 * top of the parent's, and resolves once it printed its ready line.
 */
export function spawnService(
  command: 'gateway' | 'worker',
  env: Record<string, string>,
  options: { readyTimeoutMs?: number; args?: readonly string[] } = {},
): Promise<ServiceProcess> {
  const argv = ['--conditions=source', '--import', 'tsx', CLI, command, ...(options.args ?? [])];
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
  };
  const output = () => lines.join('\n');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `nodebatch ${command} did not start within ${options.readyTimeoutMs ?? 180_000} ms:\n${output()}`,
        ),
      );
    }, options.readyTimeoutMs ?? 180_000);
    let partial = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      partial += chunk;
      let newline: number;
      while ((newline = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, newline);
        partial = partial.slice(newline + 1);
        keep(line);
        let parsed: Record<string, unknown> | undefined;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('gatewayUrl' in parsed || 'workerId' in parsed) {
          clearTimeout(timer);
          resolve({
            child,
            pid: child.pid!,
            ready: parsed,
            output,
            kill: async () => {
              if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
              await exited;
            },
            stop: async () => {
              if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
              await exited;
            },
          });
        }
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => chunk.split('\n').filter(Boolean).forEach(keep));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`nodebatch ${command} exited (${code ?? signal}) before it was ready:\n${output()}`));
    });
  });
}

/** The environment every service of one test shares: its database, queue and simulated cluster. */
export function serviceEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    PROGRESS_NOTIFY_TYPE: 'postgres',
    AUTH_JWT_SECRET: JWT_SECRET,
    NODEBATCH_CLUSTER: 'simulated',
    PORT: '0',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** A parsed JSON response body; tests read its fields directly. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary fields
type ResponseBody = any;

export async function postJson(
  url: string,
  token: string,
  body: unknown,
): Promise<{ status: number; body: ResponseBody }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * Hook timeouts of the tests that spawn services: three processes compiling
 * TypeScript on start-up take a while on a 2-core CI machine that also runs
 * other tests.
 */
export const SERVICES_START_TIMEOUT_MS = 240_000;
export const SERVICES_STOP_TIMEOUT_MS = 60_000;

/** One database, one worker and two gateways on the simulated cluster: the multi-replica setup. */
export interface ReplicaSetup {
  readonly db: TestDatabase;
  readonly worker: ServiceProcess;
  readonly gateways: readonly [ServiceProcess, ServiceProcess];
  /** Ends the three processes (a gateway a test killed already is fine) and drops the database. */
  close(): Promise<void>;
}

/**
 * Starts the worker first (it runs the migrations the gateways then find
 * done), then two gateways, all on one database and one queue over the shared
 * Redis. 40 of the 60 simulated nodes, 2 at a time, 250 ms each make a batch
 * that runs for about 5 s: long enough to kill a gateway or cancel mid-run.
 */
export async function startReplicas(prefix: string): Promise<ReplicaSetup> {
  const db = await createTestDatabase({ prefix });
  const env = serviceEnv(db.url, {
    REDIS_URL: sharedRedisUrl(),
    QUEUE_NAME: uniqueName(`${prefix}_q`),
    NODEBATCH_SIM_NODES: '60',
    NODEBATCH_SIM_LATENCY_MS: '250',
    WORKER_SHUTDOWN_GRACE_MS: '1000',
  });
  const worker = await spawnService('worker', env);
  const gateways = await Promise.all([spawnService('gateway', env), spawnService('gateway', env)]);
  return {
    db,
    worker,
    gateways,
    close: async () => {
      await Promise.all([...gateways.map((gateway) => gateway.kill()), worker.stop()]);
      await db.drop();
    },
  };
}

/** Follows a task over a gateway's WebSocket until its `end` message; the events it got. */
export function watchOverWebSocket(
  gatewayUrl: string,
  token: string,
  taskId: string,
): Promise<StoredEvent[]> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${gatewayUrl.replace('http', 'ws')}/api/v1/progress/ws`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const events: StoredEvent[] = [];
    socket.on('open', () => socket.send(JSON.stringify({ type: 'subscribe', taskId })));
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as
        | { type: 'event'; event: StoredEvent }
        | { type: 'end'; taskId: string }
        | { type: 'error'; message: string };
      if (message.type === 'event') events.push(message.event);
      else if (message.type === 'end') {
        socket.close();
        resolve(events);
      } else reject(new Error(`WebSocket error: ${message.message}`));
    });
    socket.on('error', reject);
  });
}

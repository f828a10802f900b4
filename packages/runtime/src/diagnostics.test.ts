import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransportUnavailableError } from '@nodebatch/progress';
import { sharedDatabaseUrl, startPostgres } from '@nodebatch/testkit';
import { diagnoseConnectionError } from './diagnostics.js';
import type { ConnectionTarget } from './diagnostics.js';

const shared = new URL(sharedDatabaseUrl());
const sharedHost = shared.hostname;
const sharedPort = Number(shared.port || 5432);

/** A real connection attempt's error: diagnostics are checked against what the driver really throws. */
async function connectError(config: pg.ClientConfig): Promise<unknown> {
  const client = new pg.Client({ connectionTimeoutMillis: 2_000, ...config });
  try {
    await client.connect();
  } catch (err) {
    return err;
  }
  await client.end();
  throw new Error('expected the connection to fail');
}

function target(overrides: Partial<ConnectionTarget> = {}): ConnectionTarget {
  return {
    host: sharedHost,
    port: sharedPort,
    database: 'postgres',
    username: 'postgres',
    sslMode: 'disable',
    passwordSet: true,
    ...overrides,
  };
}

let closedPort: number;
/** Accepts TCP connections and never answers: what a dropped SYN-ACK or a stuck proxy looks like to the client. */
let silent: Server;
let silentPort: number;
const silentSockets = new Set<Socket>();

beforeAll(async () => {
  closedPort = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
  silent = createServer((socket) => void silentSockets.add(socket));
  silentPort = await new Promise<number>((resolve) => {
    silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port));
  });
});

afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
});

describe('diagnoseConnectionError', () => {
  it('connection refused: is the server running, which port', async () => {
    const err = await connectError({ host: '127.0.0.1', port: closedPort });
    const diagnosis = diagnoseConnectionError(err, target({ host: '127.0.0.1', port: closedPort }), {});
    expect(diagnosis).toMatchObject({ code: 'ECONNREFUSED', kind: 'refused' });
    expect(diagnosis.summary).toContain(`127.0.0.1:${closedPort}`);
    expect(diagnosis.checklist.join('\n')).toMatch(/running/);
    expect(diagnosis.checklist.join('\n')).toContain('DB_PORT');
  });

  it('name not resolved: service name, namespace, DNS', async () => {
    const err = await connectError({ host: 'no-such-service.invalid', port: 5432 });
    const diagnosis = diagnoseConnectionError(
      err,
      target({ host: 'no-such-service.invalid', port: 5432 }),
      {},
    );
    expect(diagnosis.kind).toBe('name-not-resolved');
    expect(['ENOTFOUND', 'EAI_AGAIN']).toContain(diagnosis.code);
    const text = diagnosis.checklist.join('\n');
    expect(text).toContain('service name');
    expect(text).toContain('namespace');
    expect(text).toContain('DNS');
  });

  it('timeout: network policy, firewall', async () => {
    const err = await connectError({ host: '127.0.0.1', port: silentPort, connectionTimeoutMillis: 300 });
    const diagnosis = diagnoseConnectionError(err, target({ host: '127.0.0.1', port: silentPort }), {});
    expect(diagnosis).toMatchObject({ code: 'TIMEOUT', kind: 'timeout' });
    const text = diagnosis.checklist.join('\n');
    expect(text).toContain('NetworkPolicy');
    expect(text).toContain('firewall');
  });

  it('missing database: create it or fix the name', async () => {
    const err = await connectError({
      host: sharedHost,
      port: sharedPort,
      user: 'postgres',
      database: 'nb_missing_db',
    });
    const diagnosis = diagnoseConnectionError(err, target({ database: 'nb_missing_db' }), {});
    expect(diagnosis).toMatchObject({ code: '3D000', kind: 'database-missing' });
    expect(diagnosis.summary).toContain('"nb_missing_db"');
    expect(diagnosis.checklist.join('\n')).toContain('createdb');
  });

  it('unknown role: credentials, with the username named', async () => {
    const err = await connectError({
      host: sharedHost,
      port: sharedPort,
      user: 'nb_no_such_role',
      database: 'postgres',
    });
    const diagnosis = diagnoseConnectionError(
      err,
      target({ username: 'nb_no_such_role', passwordSet: false }),
      {},
    );
    expect(diagnosis).toMatchObject({ code: '28000', kind: 'authentication' });
    const text = diagnosis.checklist.join('\n');
    expect(text).toContain('"nb_no_such_role"');
    expect(text).toContain('No password is set');
  });

  it('SSL required by the client but not offered by the server', async () => {
    // A private server with TLS off, so the mismatch is produced whatever the shared server offers.
    const server = await startPostgres({ settings: { ssl: 'off' } });
    try {
      const port = Number(new URL(server.url).port);
      const err = await connectError({
        host: '127.0.0.1',
        port,
        user: 'postgres',
        ssl: { rejectUnauthorized: false },
      });
      const diagnosis = diagnoseConnectionError(
        err,
        target({ host: '127.0.0.1', port, sslMode: 'require' }),
        {},
      );
      expect(diagnosis.kind).toBe('ssl');
      expect(diagnosis.summary).toContain('SSL mode require');
    } finally {
      await server.destroy();
    }
  }, 600_000);

  it('looks through our wrapper to the driver error', async () => {
    const cause = await connectError({ host: '127.0.0.1', port: closedPort });
    const wrapped = new TransportUnavailableError('cannot LISTEN', { cause });
    const diagnosis = diagnoseConnectionError(wrapped, target({ host: '127.0.0.1', port: closedPort }), {});
    expect(diagnosis.code).toBe('ECONNREFUSED');
    expect(diagnosis.message).toContain('ECONNREFUSED');
  });

  it('finds a system error code kept only in the text of a wrapper (as the Redis transport reports it)', () => {
    const err = new TransportUnavailableError(
      `redis transport cannot connect to 127.0.0.1:${closedPort}: connect ECONNREFUSED 127.0.0.1:${closedPort}`,
      { cause: new Error('Connection is closed.') },
    );
    const diagnosis = diagnoseConnectionError(
      err,
      { service: 'redis', host: '127.0.0.1', port: closedPort, passwordSet: false },
      {},
    );
    expect(diagnosis).toMatchObject({ code: 'ECONNREFUSED', kind: 'refused' });
    expect(diagnosis.summary).toBe(`connection to Redis at 127.0.0.1:${closedPort} refused`);
    expect(diagnosis.checklist.join('\n')).toContain('redis-cli');
  });

  it('inside Kubernetes with host localhost, says DB_HOST is probably not set', async () => {
    const err = await connectError({ host: 'localhost', port: closedPort });
    const k8s = { KUBERNETES_SERVICE_HOST: '10.96.0.1' };
    const inside = diagnoseConnectionError(err, target({ host: 'localhost', port: closedPort }), k8s);
    expect(inside.checklist[0]).toContain('DB_HOST is probably not set');
    const outside = diagnoseConnectionError(err, target({ host: 'localhost', port: closedPort }), {});
    expect(outside.checklist.join('\n')).not.toContain('probably not set');
    const redis = diagnoseConnectionError(
      err,
      { service: 'redis', host: 'localhost', port: closedPort, passwordSet: false },
      k8s,
    );
    expect(redis.checklist[0]).toContain('REDIS_HOST');
  });
});

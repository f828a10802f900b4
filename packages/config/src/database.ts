import type { PoolConfig } from 'pg';
import type { DatabaseConfig, SslMode } from './nodebatch-config.js';

/** What may be shown about a database connection: everything but the password. */
export interface DatabaseDescription {
  host: string;
  port: number;
  database: string;
  username: string;
  sslMode: SslMode;
  passwordSet: boolean;
}

/**
 * node-postgres pool options for the configured database. Every field is set
 * explicitly so that PG* variables of the environment never sneak in.
 *
 * SSL: node-postgres cannot try TLS and fall back, so `allow` and `prefer`
 * connect without TLS; `require` encrypts without checking the certificate
 * (as libpq does); `verify-ca` checks the chain but not the host name;
 * `verify-full` checks both.
 */
export function pgPoolConfig(database: DatabaseConfig): PoolConfig {
  return {
    host: database.host,
    port: database.port,
    database: database.database,
    user: database.username,
    // An empty string rather than undefined: pg would otherwise read PGPASSWORD.
    password: database.password ?? '',
    ssl: sslOptions(database.sslMode),
    max: database.poolMax,
    application_name: 'nodebatch',
  };
}

function sslOptions(mode: SslMode): PoolConfig['ssl'] {
  switch (mode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { rejectUnauthorized: true };
  }
}

/** True when DB_LISTEN_URL, DB_LISTEN_HOST or DB_LISTEN_PORT (or the file's listen keys) are set. */
export function hasSeparateListener(database: DatabaseConfig): boolean {
  return (
    database.listenHost !== undefined ||
    database.listenPort !== undefined ||
    database.listenDatabase !== undefined ||
    database.listenUsername !== undefined ||
    database.listenPassword !== undefined
  );
}

/**
 * The database the LISTEN connection dials: the pool's, with the listen
 * settings put over it. A pooler in transaction mode hands each transaction
 * to any server connection, so a LISTEN made through it is registered on a
 * connection that the notifications never reach.
 */
export function listenerDatabase(database: DatabaseConfig): DatabaseConfig {
  const {
    listenHost,
    listenPort,
    listenDatabase: listenName,
    listenUsername,
    listenPassword,
    ...pool
  } = database;
  return {
    ...pool,
    host: listenHost ?? pool.host,
    port: listenPort ?? pool.port,
    database: listenName ?? pool.database,
    username: listenUsername ?? pool.username,
    ...(listenPassword !== undefined || pool.password !== undefined
      ? { password: listenPassword ?? pool.password }
      : {}),
    poolMax: 1,
  };
}

export function describeDatabase(database: DatabaseConfig): DatabaseDescription {
  return {
    host: database.host,
    port: database.port,
    database: database.database,
    username: database.username,
    sslMode: database.sslMode,
    passwordSet: database.password !== undefined,
  };
}

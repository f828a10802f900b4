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

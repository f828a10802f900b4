/**
 * The configuration file of the node manager nodebatch replaces: teams bring
 * their ConfigMaps over unchanged. Its keys that nodebatch reads under another
 * spelling are `fileAliases` in config-fields.ts; the ones listed here are
 * recognised and reported once as ignored, so a real misspelling of one of our
 * own keys still stands out as an error.
 */

/** Whole sections of that file that nodebatch has no use for (server, auth, LDAP, monitoring, ...). */
export const IGNORED_FILE_SECTIONS: ReadonlySet<string> = new Set([
  'server',
  'jwt',
  'ldap',
  'kubernetes',
  'monitoring',
  'health',
  'microservice',
  'automation',
]);

/** Single keys of its shared sections that nodebatch does not use, with why where it matters. */
export const IGNORED_FILE_KEYS: ReadonlyMap<string, string> = new Map([
  ['database.type', 'nodebatch always uses PostgreSQL'],
  ['database.dsn', 'set DATABASE_URL instead'],
  ['database.max_open_conns', 'the pool size is database.poolMax (DB_POOL_MAX)'],
  ['database.max_idle_conns', ''],
  ['database.max_lifetime', ''],
  ['database.auto_migrate', 'migrations run at start under a lock; see nodebatch doctor --fix'],
  ['database.validate_on_startup', ''],
  ['database.repair_on_startup', ''],
  ['database.migration_timeout', ''],
  // Redis lives in its own `redis:` section (or REDIS_URL) here.
  ['progress.redis', 'configure Redis in the redis: section or with REDIS_URL'],
  ['logging.format', 'logs are always JSON'],
  ['logging.structured', 'logs are always structured'],
]);

/**
 * `progress.enable_database` switched that system from in-memory progress to
 * the database. nodebatch always keeps progress in the PostgreSQL event log,
 * so the key is accepted and checked, and `false` is reported as not honoured.
 */
export const ENABLE_DATABASE_KEY = 'progress.enable_database';

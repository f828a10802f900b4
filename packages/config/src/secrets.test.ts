import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { configEntries } from './config-entries.js';
import { logConfigWarnings } from './config-warning.js';
import { maskUrlPassword } from './connection-urls.js';
import { createLogger } from './create-logger.js';
import { describeDatabase, pgPoolConfig } from './database.js';
import { loadConfig } from './load-config.js';
import { describeRedis, redisOptions } from './redis.js';

const dir = mkdtempSync(join(tmpdir(), 'nb-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Lines a logger wrote, parsed. */
function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', name: 'test', destination }) };
}

const SECRETS = [
  'db-pw-env',
  'db-pw-url',
  'db-pw-file',
  'db-pw-yaml',
  'redis-pw-url',
  'redis-pw-env',
  'jwt-secret-value',
  'hint-key-value-0123456789abcdef0123',
];

describe('no password in any output', () => {
  const sources = [
    {
      env: {
        DB_PASSWORD: 'db-pw-env',
        REDIS_URL: 'redis://:redis-pw-url@r:6379/1',
        AUTH_JWT_SECRET: 'jwt-secret-value',
        PROGRESS_HINT_KEY: 'hint-key-value-0123456789abcdef0123',
      },
    },
    { env: { DATABASE_URL: 'postgres://u:db-pw-url@h/db', REDIS_HOST: 'r', REDIS_PASSWORD: 'redis-pw-env' } },
    { env: { DB_PASSWORD_FILE: join(dir, 'pw') }, file: 'db-pw-file\n' },
    { env: { CONFIG_FILE: join(dir, 'config.yaml') }, yaml: 'database:\n  password: db-pw-yaml\n' },
  ];
  it.each(sources)(
    'config entries, sources, warnings, descriptions and logs hide the secret (%#)',
    (source) => {
      if (source.file) writeFileSync(join(dir, 'pw'), source.file);
      if (source.yaml) writeFileSync(join(dir, 'config.yaml'), source.yaml);
      const loaded = loadConfig({ env: { ...source.env, DB_HOSTNAME: 'typo' }, cwd: dir });
      const entries = configEntries(loaded);
      expect(entries.find((e) => e.key === 'database.password')?.value).toBe(
        loaded.config.database.password === undefined ? 'not set' : 'set',
      );
      const { lines, logger } = capture();
      logConfigWarnings(logger, loaded.warnings);
      logger.info({ config: loaded.config }, 'effective configuration');
      logger.info({ database: pgPoolConfig(loaded.config.database) }, 'pool');
      logger.info({ password: 'db-pw-env', token: 'jwt-secret-value' }, 'top-level fields');
      logger.info({ progress: loaded.config.progress }, 'progress settings');
      const outputs = [
        JSON.stringify(entries),
        JSON.stringify(loaded.sources),
        JSON.stringify(loaded.warnings),
        JSON.stringify(describeDatabase(loaded.config.database)),
        loaded.config.redis ? JSON.stringify(describeRedis(loaded.config.redis)) : '',
        ...lines,
      ].join('\n');
      for (const secret of SECRETS) expect(outputs).not.toContain(secret);
      expect(lines.some((line) => line.includes('[redacted]'))).toBe(true);
    },
  );

  it('prints set / not set for every secret key', () => {
    const entries = configEntries(loadConfig({ env: { DB_PASSWORD: 'x', REDIS_HOST: 'r' }, cwd: dir }));
    const shown = Object.fromEntries(entries.map((e) => [e.key, e.value]));
    expect(shown['database.password']).toBe('set');
    expect(shown['redis.password']).toBe('not set');
    expect(shown['auth.jwtSecret']).toBe('not set');
    expect(shown['progress.hintKey']).toBe('not set');
    const withKey = configEntries(loadConfig({ env: { PROGRESS_HINT_KEY: 'h'.repeat(32) }, cwd: dir }));
    expect(withKey.find((e) => e.key === 'progress.hintKey')?.value).toBe('set');
  });

  it('never echoes a secret in a validation error', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'database:\n  password: [db-pw-yaml]\n');
    let error: unknown;
    try {
      loadConfig({ env: { CONFIG_FILE: join(dir, 'bad.yaml') }, cwd: dir });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('database.password=<hidden> (from file');
    expect((error as Error).message).not.toContain('db-pw-yaml');
  });

  it('masks the password of a URL', () => {
    expect(maskUrlPassword('postgres://u:db-pw-url@h:5432/db')).toBe('postgres://u:***@h:5432/db');
    expect(maskUrlPassword('redis://h:6379')).toBe('redis://h:6379');
    expect(maskUrlPassword('not a url db-pw-url')).toBe('<not a URL>');
  });

  it('logs each warning once per process', () => {
    const { lines, logger } = capture();
    const { warnings } = loadConfig({ env: { PROGRESS_NOTIFYTYPE: 'polling-once' }, cwd: dir });
    logConfigWarnings(logger, warnings);
    logConfigWarnings(
      logger,
      loadConfig({ env: { PROGRESS_NOTIFYTYPE: 'polling-once' }, cwd: dir }).warnings,
    );
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 40,
      code: 'LOOKALIKE_VARIABLE',
      variable: 'PROGRESS_NOTIFYTYPE',
    });
  });

  it('logs errors under err with their stack', () => {
    const { lines, logger } = capture();
    logger.error({ err: new Error('boom') }, 'failed');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      name: 'test',
      msg: 'failed',
      err: { message: 'boom', type: 'Error' },
    });
  });
});

describe('driver options', () => {
  const database = {
    host: 'h',
    port: 6000,
    database: 'd',
    username: 'u',
    password: 'p',
    sslMode: 'disable' as const,
    poolMax: 3,
  };

  it('maps the database config to pg pool options, never leaving a field to PG* variables', () => {
    expect(pgPoolConfig(database)).toMatchObject({
      host: 'h',
      port: 6000,
      database: 'd',
      user: 'u',
      password: 'p',
      max: 3,
      ssl: false,
    });
    expect(pgPoolConfig({ ...database, password: undefined }).password).toBe('');
    expect(pgPoolConfig({ ...database, sslMode: 'require' }).ssl).toEqual({ rejectUnauthorized: false });
    expect(pgPoolConfig({ ...database, sslMode: 'verify-full' }).ssl).toEqual({ rejectUnauthorized: true });
    expect(pgPoolConfig({ ...database, sslMode: 'verify-ca' }).ssl).toMatchObject({
      rejectUnauthorized: true,
    });
    expect(describeDatabase(database)).toEqual({
      host: 'h',
      port: 6000,
      database: 'd',
      username: 'u',
      sslMode: 'disable',
      passwordSet: true,
    });
  });

  it('maps the Redis config to ioredis options', () => {
    expect(redisOptions({ host: 'r', port: 1, db: 2 })).toEqual({ host: 'r', port: 1, db: 2 });
    expect(redisOptions({ host: 'r', port: 1, db: 2, username: 'a', password: 'b', tls: true })).toEqual({
      host: 'r',
      port: 1,
      db: 2,
      username: 'a',
      password: 'b',
      tls: {},
    });
    expect(describeRedis({ host: 'r', port: 1, db: 2, password: 'b' })).toEqual({
      mode: 'single',
      host: 'r',
      port: 1,
      db: 2,
      tls: false,
      passwordSet: true,
    });
    expect(
      describeRedis({
        clusterNodes: [
          { host: 'a', port: 7000 },
          { host: 'b', port: 7001 },
        ],
        host: 'localhost',
        port: 6379,
        db: 0,
        password: 'b',
      }),
    ).toEqual({
      mode: 'cluster',
      host: 'a',
      port: 7000,
      nodes: ['a:7000', 'b:7001'],
      db: 0,
      tls: false,
      passwordSet: true,
    });
  });
});

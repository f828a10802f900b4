import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ACCEPTED_ENV_VARS } from './config-fields.js';
import { ConfigError } from './config-error.js';
import { loadConfig } from './load-config.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory, optionally with a config.yaml, so no test sees another's file. */
function workdir(configYaml?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nb-config-'));
  dirs.push(dir);
  if (configYaml !== undefined) writeFileSync(join(dir, 'config.yaml'), configYaml);
  return dir;
}

function load(env: Record<string, string | undefined>, configYaml?: string) {
  return loadConfig({ env, cwd: workdir(configYaml) });
}

function errorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('loads with an empty environment and says every value is a default', () => {
    const { config, sources, warnings } = load({});
    expect(config.database).toEqual({
      host: 'localhost',
      port: 5432,
      database: 'nodebatch',
      username: 'postgres',
      sslMode: 'disable',
      poolMax: 10,
    });
    expect(config.redis).toBeNull();
    expect(config.progress).toEqual({
      notifyType: 'postgres',
      pollIntervalMs: 1000,
      fallbackAfterMs: 5000,
      combinedHints: false,
    });
    expect(config.gateway).toEqual({ port: 8080, allowedOrigins: [] });
    expect(config.auth).toEqual({
      disabled: false,
      maxTokenLifetimeSeconds: 86_400,
      clockToleranceSeconds: 30,
      userClaim: 'sub',
      roleClaim: 'role',
      groupRoles: {},
      defaultRole: 'viewer',
    });
    expect(config.policy).toEqual({
      cordonRole: 'operator',
      uncordonRole: 'operator',
      drainRole: 'admin',
      labelRole: 'operator',
      taintRole: 'operator',
      protectedPrefixes: ['kubernetes.io/', 'k8s.io/', 'node-role.kubernetes.io/', 'node.kubernetes.io/'],
      protectedPrefixRole: 'admin',
      seeAllTasksRoles: ['admin'],
    });
    expect(config.audit).toEqual({ retentionDays: 365 });
    expect(config.cluster).toEqual({ mode: 'kubernetes', simNodes: 50, simLatencyMs: 0, simFailureRate: 0 });
    expect(config.worker).toEqual({
      jobConcurrency: 4,
      shutdownGraceMs: 30000,
      orphanSweepIntervalMs: 60000,
      appendRetryBudgetMs: 30000,
    });
    expect(config.queue).toEqual({ name: 'nodebatch-batches' });
    expect(config.eventStore).toEqual({ retentionDays: 7 });
    expect(config.log).toEqual({ level: 'info' });
    expect(new Set(Object.values(sources))).toEqual(new Set(['default']));
    expect(sources.redis).toBe('default');
    expect(warnings).toEqual([]);
  });

  it('returns a deep-frozen configuration', () => {
    const { config, sources } = load({ ALLOWED_ORIGINS: 'https://a.example' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.database)).toBe(true);
    expect(Object.isFrozen(config.gateway.allowedOrigins)).toBe(true);
    expect(Object.isFrozen(sources)).toBe(true);
    expect(() => {
      (config.database as { host: string }).host = 'elsewhere';
    }).toThrow(TypeError);
  });

  it('defaults the cluster mode to kubernetes inside a pod and outside; simulated only when set', () => {
    for (const env of [{ KUBERNETES_SERVICE_HOST: '10.0.0.1', DB_HOST: 'db' }, {}]) {
      const { config, sources } = load(env);
      expect(config.cluster.mode).toBe('kubernetes');
      expect(sources['cluster.mode']).toBe('default');
    }
    expect(load({ NODEBATCH_CLUSTER: 'simulated' }).config.cluster.mode).toBe('simulated');
  });
});

describe('database aliases', () => {
  const cases: Array<[variable: string, key: string, raw: string, value: unknown]> = [
    ['DB_HOST', 'host', 'db-a', 'db-a'],
    ['DATABASE_HOST', 'host', 'db-b', 'db-b'],
    ['DB_PORT', 'port', '6001', 6001],
    ['DATABASE_PORT', 'port', '6002', 6002],
    ['DB_DATABASE', 'database', 'one', 'one'],
    ['DATABASE_DATABASE', 'database', 'two', 'two'],
    ['DB_NAME', 'database', 'three', 'three'],
    ['DATABASE_NAME', 'database', 'four', 'four'],
    ['DB_USERNAME', 'username', 'alice', 'alice'],
    ['DATABASE_USERNAME', 'username', 'bob', 'bob'],
    ['DB_USER', 'username', 'carol', 'carol'],
    ['DATABASE_USER', 'username', 'dave', 'dave'],
    ['DB_PASSWORD', 'password', 'pw-1', 'pw-1'],
    ['DATABASE_PASSWORD', 'password', 'pw-2', 'pw-2'],
    ['DB_SSL_MODE', 'sslMode', 'require', 'require'],
    ['DATABASE_SSL_MODE', 'sslMode', 'verify-ca', 'verify-ca'],
    ['DB_SSLMODE', 'sslMode', 'verify-full', 'verify-full'],
    ['DATABASE_SSLMODE', 'sslMode', 'prefer', 'prefer'],
    ['DB_POOL_MAX', 'poolMax', '20', 20],
    ['DATABASE_POOL_MAX', 'poolMax', '30', 30],
  ];
  it.each(cases)('%s sets database.%s', (variable, key, raw, value) => {
    const { config, sources } = load({ [variable]: raw });
    expect(config.database[key as keyof typeof config.database]).toEqual(value);
    expect(sources[`database.${key}`]).toBe(`env:${variable}`);
  });

  it('ranks DB_NAME below DB_DATABASE and DB_USER below DB_USERNAME within the DB_ tier', () => {
    const { config, sources } = load({ DB_NAME: 'n', DB_DATABASE: 'd', DB_USER: 'u', DB_USERNAME: 'un' });
    expect(config.database.database).toBe('d');
    expect(config.database.username).toBe('un');
    expect(sources['database.database']).toBe('env:DB_DATABASE');
  });

  it('treats an empty variable as unset', () => {
    const { config, sources } = load({ DB_HOST: '', DATABASE_HOST: 'db-b' });
    expect(config.database.host).toBe('db-b');
    expect(sources['database.host']).toBe('env:DATABASE_HOST');
  });

  it('accepts enum values in any case', () => {
    expect(load({ DB_SSL_MODE: ' REQUIRE ' }).config.database.sslMode).toBe('require');
  });
});

describe('other environment variables', () => {
  const cases: Array<[variable: string, key: string, raw: string, value: unknown]> = [
    ['PROGRESS_NOTIFY_TYPE', 'progress.notifyType', 'polling', 'polling'],
    ['PROGRESS_POLL_INTERVAL', 'progress.pollIntervalMs', '250', 250],
    ['PROGRESS_FALLBACK_AFTER', 'progress.fallbackAfterMs', '9000', 9000],
    ['PROGRESS_COMBINED_HINTS', 'progress.combinedHints', 'true', true],
    ['PORT', 'gateway.port', '9090', 9090],
    [
      'ALLOWED_ORIGINS',
      'gateway.allowedOrigins',
      'https://a.example, http://b.example:3000/',
      ['https://a.example', 'http://b.example:3000'],
    ],
    ['AUTH_JWT_SECRET', 'auth.jwtSecret', 's3cret', 's3cret'],
    ['AUTH_DISABLED', 'auth.disabled', 'yes', true],
    ['NODEBATCH_CLUSTER', 'cluster.mode', 'kubernetes', 'kubernetes'],
    ['NODEBATCH_SIM_NODES', 'cluster.simNodes', '7', 7],
    ['NODEBATCH_SIM_LATENCY_MS', 'cluster.simLatencyMs', '15', 15],
    ['NODEBATCH_SIM_FAILURE_RATE', 'cluster.simFailureRate', '0.25', 0.25],
    ['KUBECONFIG', 'cluster.kubeconfig', '/home/me/.kube/config', '/home/me/.kube/config'],
    ['WORKER_JOB_CONCURRENCY', 'worker.jobConcurrency', '8', 8],
    ['WORKER_SHUTDOWN_GRACE_MS', 'worker.shutdownGraceMs', '1000', 1000],
    ['WORKER_ORPHAN_SWEEP_INTERVAL_MS', 'worker.orphanSweepIntervalMs', '0', 0],
    ['WORKER_APPEND_RETRY_BUDGET_MS', 'worker.appendRetryBudgetMs', '5000', 5000],
    ['QUEUE_NAME', 'queue.name', 'q1', 'q1'],
    ['EVENT_RETENTION_DAYS', 'eventStore.retentionDays', '30', 30],
    ['LOG_LEVEL', 'log.level', 'debug', 'debug'],
  ];
  it.each(cases)('%s sets %s', (variable, key, raw, value) => {
    const { config, sources } = load({ [variable]: raw });
    const [section = '', name = ''] = key.split('.');
    expect((config as unknown as Record<string, Record<string, unknown>>)[section]?.[name]).toEqual(value);
    expect(sources[key]).toBe(`env:${variable}`);
  });

  it('lists every variable it reads in ACCEPTED_ENV_VARS', () => {
    // The environment is a Proxy that records every name loadConfig looks up, over loads that take
    // each path: nothing set, every variable above set, a URL and a password file, inside Kubernetes.
    const read = new Set<string>();
    const recording = (values: Record<string, string>) =>
      new Proxy(values, {
        get: (target, name, receiver) => {
          if (typeof name === 'string') read.add(name);
          return Reflect.get(target, name, receiver) as unknown;
        },
        has: (target, name) => {
          if (typeof name === 'string') read.add(name);
          return Reflect.has(target, name);
        },
      });
    const dir = workdir();
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, 'secret\n');
    const envs: Record<string, string>[] = [
      {},
      Object.fromEntries(cases.map(([variable, , raw]) => [variable, raw])),
      {
        DATABASE_URL: 'postgres://u@db.example:5433/nb',
        REDIS_URL: 'redis://cache:6380/2',
        DB_PASSWORD_FILE: passwordFile,
        KUBERNETES_SERVICE_HOST: '10.0.0.1',
        CONFIG_FILE: join(workdir('log:\n  level: warn\n'), 'config.yaml'),
      },
    ];
    for (const env of envs) loadConfig({ env: recording(env), cwd: workdir() });
    // Enumerating the environment (the look-alike warning scans every name) is not reading a variable;
    // the names looked up are.
    expect([...read].filter((name) => !ACCEPTED_ENV_VARS.includes(name))).toEqual([]);
    for (const [variable] of cases) expect(read).toContain(variable);
    for (const variable of ['CONFIG_FILE', 'DATABASE_URL', 'REDIS_URL', 'DB_PASSWORD_FILE']) {
      expect(read).toContain(variable);
    }
  });
});

describe('precedence between each pair of sources', () => {
  // Highest first; each entry sets database.host in its own way.
  const tiers = [
    { name: 'DB_*', env: { DB_HOST: 'from-db' }, source: 'env:DB_HOST', host: 'from-db' },
    {
      name: 'DATABASE_*',
      env: { DATABASE_HOST: 'from-database' },
      source: 'env:DATABASE_HOST',
      host: 'from-database',
    },
    {
      name: 'DATABASE_URL',
      env: { DATABASE_URL: 'postgres://from-url/x' },
      source: 'url:DATABASE_URL',
      host: 'from-url',
    },
    {
      name: 'file',
      file: 'database:\n  host: from-file\n',
      source: 'file:config.yaml#database.host',
      host: 'from-file',
    },
    { name: 'default', source: 'default', host: 'localhost' },
  ];
  const pairs = tiers.flatMap((high, i) => tiers.slice(i + 1).map((low) => [high, low] as const));
  it.each(pairs.map(([high, low]) => [high.name, low.name, high, low]))(
    '%s wins over %s',
    (_h, _l, high, low) => {
      const { config, sources } = load({ ...low.env, ...high.env }, high.file ?? low.file);
      expect(config.database.host).toBe(high.host);
      expect(sources['database.host']).toBe(high.source);
    },
  );

  const redisTiers = [
    { name: 'REDIS_HOST', env: { REDIS_HOST: 'from-env' }, source: 'env:REDIS_HOST', host: 'from-env' },
    {
      name: 'REDIS_URL',
      env: { REDIS_URL: 'redis://from-url:6379' },
      source: 'url:REDIS_URL',
      host: 'from-url',
    },
    {
      name: 'file',
      file: 'redis:\n  host: from-file\n',
      source: 'file:config.yaml#redis.host',
      host: 'from-file',
    },
  ];
  const redisPairs = redisTiers.flatMap((high, i) =>
    redisTiers.slice(i + 1).map((low) => [high, low] as const),
  );
  it.each(redisPairs.map(([high, low]) => [high.name, low.name, high, low]))(
    'Redis: %s wins over %s',
    (_h, _l, high, low) => {
      const { config, sources } = load({ ...low.env, ...high.env }, high.file ?? low.file);
      expect(config.redis?.host).toBe(high.host);
      expect(sources['redis.host']).toBe(high.source);
    },
  );

  it('takes each key from the highest source that has it, not the whole group from one source', () => {
    const { config, sources } = load(
      { DB_PORT: '7000', DATABASE_URL: 'postgres://u@url-host/urldb' },
      'database:\n  host: file-host\n  poolMax: 3\n',
    );
    expect(config.database).toMatchObject({
      host: 'url-host',
      port: 7000,
      database: 'urldb',
      username: 'u',
      poolMax: 3,
    });
    expect(sources).toMatchObject({
      'database.host': 'url:DATABASE_URL',
      'database.port': 'env:DB_PORT',
      'database.poolMax': 'file:config.yaml#database.poolMax',
      'database.sslMode': 'default',
    });
  });

  it('file values beat defaults for every section', () => {
    const { config, sources } = load(
      {},
      [
        'progress:\n  notifyType: polling\n  pollIntervalMs: 200',
        'gateway:\n  port: 9999\n  allowedOrigins: [https://x.example]',
        'auth:\n  disabled: true',
        'cluster:\n  simNodes: 3',
        'worker:\n  jobConcurrency: 2',
        'queue:\n  name: qq',
        'eventStore:\n  retentionDays: 1',
        'log:\n  level: warn',
      ].join('\n'),
    );
    expect(config.progress.notifyType).toBe('polling');
    expect(config.progress.pollIntervalMs).toBe(200);
    expect(config.gateway).toEqual({ port: 9999, allowedOrigins: ['https://x.example'] });
    expect(config.auth.disabled).toBe(true);
    expect(config.cluster.simNodes).toBe(3);
    expect(config.worker.jobConcurrency).toBe(2);
    expect(config.queue.name).toBe('qq');
    expect(config.eventStore.retentionDays).toBe(1);
    expect(config.log.level).toBe('warn');
    expect(sources['gateway.allowedOrigins']).toBe('file:config.yaml#gateway.allowedOrigins');
  });
});

describe('config file', () => {
  it('reads CONFIG_FILE relative to cwd and names it in sources', () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'custom.yaml'), 'database:\n  host: custom-host\n');
    const { config, sources } = loadConfig({ env: { CONFIG_FILE: 'custom.yaml' }, cwd });
    expect(config.database.host).toBe('custom-host');
    expect(sources['database.host']).toBe('file:custom.yaml#database.host');
  });

  it('prefers CONFIG_FILE over ./config.yaml', () => {
    const cwd = workdir('database:\n  host: default-file\n');
    writeFileSync(join(cwd, 'other.yaml'), 'database:\n  port: 7777\n');
    const { config } = loadConfig({ env: { CONFIG_FILE: join(cwd, 'other.yaml') }, cwd });
    expect(config.database).toMatchObject({ host: 'localhost', port: 7777 });
  });

  it('a `redis:` section configures Redis with defaults for what it leaves out', () => {
    const { config, sources } = load({}, 'redis:\n  port: 6380\n');
    expect(config.redis).toEqual({ host: 'localhost', port: 6380, db: 0, tls: false });
    expect(sources['redis.port']).toBe('file:config.yaml#redis.port');
  });

  it('accepts an empty file and empty keys', () => {
    expect(load({}, '').config.database.host).toBe('localhost');
    expect(load({}, 'database:\n  host:\n').config.database.host).toBe('localhost');
  });

  it('fails when CONFIG_FILE does not exist, naming the variable and path', () => {
    const error = errorOf(() => load({ CONFIG_FILE: '/nonexistent/nodebatch.yaml' }));
    expect(error.message).toContain('CONFIG_FILE="/nonexistent/nodebatch.yaml"');
    expect(error.message).toContain('ENOENT');
  });

  it('fails on malformed YAML with the path and line', () => {
    const cwd = workdir('database:\n  host: a\n  port: [1, 2\nlog:\n  level: info\n');
    const error = errorOf(() => loadConfig({ env: {}, cwd }));
    expect(error.message).toContain(join(cwd, 'config.yaml'));
    expect(error.message).toMatch(/line [3-5]: malformed YAML/);
  });

  it('fails on a duplicate key with its line', () => {
    const cwd = workdir('database:\n  host: a\n  host: b\n');
    expect(errorOf(() => loadConfig({ env: {}, cwd })).message).toMatch(
      /config\.yaml line 3: malformed YAML/,
    );
  });

  it('fails on an unknown key with its line and a suggestion', () => {
    const cwd = workdir('database:\n  host: a\n  hostname: b\nprogres:\n  x: 1\n');
    const error = errorOf(() => loadConfig({ env: {}, cwd }));
    expect(error.message).toContain('line 3: unknown key database.hostname (did you mean database.host?)');
    expect(error.message).toContain('line 4: unknown key progres (did you mean progress?)');
  });

  it('fails when the top level is not a mapping', () => {
    expect(errorOf(() => load({}, '- a\n- b\n')).message).toContain('line 1: expected a mapping of sections');
    expect(errorOf(() => load({}, 'database: 5\n')).message).toContain(
      'database (from file config.yaml#database line 1)',
    );
  });
});

describe('*_FILE secrets', () => {
  function secretFile(contents: string): string {
    const path = join(workdir(), 'secret');
    writeFileSync(path, contents);
    return path;
  }

  it('reads DB_PASSWORD_FILE and trims the trailing newline only', () => {
    const { config, sources } = load({ DB_PASSWORD_FILE: secretFile(' pa ss \n') });
    expect(config.database.password).toBe(' pa ss ');
    expect(sources['database.password']).toBe('env:DB_PASSWORD_FILE');
    expect(load({ DB_PASSWORD_FILE: secretFile('crlf\r\n') }).config.database.password).toBe('crlf');
  });

  it('resolves a relative path against cwd', () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'pw.txt'), 'relative\n');
    expect(loadConfig({ env: { DB_PASSWORD_FILE: 'pw.txt' }, cwd }).config.database.password).toBe(
      'relative',
    );
  });

  it('ranks DB_PASSWORD_FILE in the DB_ tier: above DATABASE_PASSWORD, below DB_PASSWORD with a warning', () => {
    const path = secretFile('from-file\n');
    expect(load({ DB_PASSWORD_FILE: path, DATABASE_PASSWORD: 'other' }).config.database.password).toBe(
      'from-file',
    );
    const both = load({ DB_PASSWORD_FILE: path, DB_PASSWORD: 'direct' });
    expect(both.config.database.password).toBe('direct');
    expect(both.warnings).toContainEqual(
      expect.objectContaining({ code: 'SHADOWED_VARIABLE', variable: 'DB_PASSWORD_FILE' }),
    );
  });

  it('reads REDIS_PASSWORD_FILE and AUTH_JWT_SECRET_FILE', () => {
    const { config } = load({
      REDIS_HOST: 'r',
      REDIS_PASSWORD_FILE: secretFile('redis-pw\n'),
      AUTH_JWT_SECRET_FILE: secretFile('jwt\n'),
    });
    expect(config.redis?.password).toBe('redis-pw');
    expect(config.auth.jwtSecret).toBe('jwt');
  });

  it('reads PROGRESS_HINT_KEY or PROGRESS_HINT_KEY_FILE, and refuses a key under 32 bytes naming the variable', () => {
    const key = 'k'.repeat(31) + '\u00e9'; // 33 bytes in UTF-8, 32 characters
    expect(load({ PROGRESS_HINT_KEY: key }).config.progress.hintKey).toBe(key);
    const fromFile = load({ PROGRESS_HINT_KEY_FILE: secretFile(`${key}\n`) });
    expect(fromFile.config.progress.hintKey).toBe(key);
    expect(fromFile.sources['progress.hintKey']).toBe('env:PROGRESS_HINT_KEY_FILE');
    expect(load({}).config.progress.hintKey).toBeUndefined();

    const short = 'short-hint-key-0123456789abcdef'; // 31 bytes
    expect(errorOf(() => load({ PROGRESS_HINT_KEY: short })).message).toBe(
      'invalid configuration: PROGRESS_HINT_KEY=<hidden> (from env PROGRESS_HINT_KEY): expected a secret of at least 32 bytes (for example: openssl rand -base64 48)',
    );
    const shortFile = errorOf(() => load({ PROGRESS_HINT_KEY_FILE: secretFile(`${short}\n`) })).message;
    expect(shortFile).toContain(
      'PROGRESS_HINT_KEY_FILE=<hidden> (from env PROGRESS_HINT_KEY_FILE): expected a secret of at least 32 bytes',
    );
    expect(shortFile).not.toContain(short);
  });

  it('fails on a missing or empty file, naming the variable and path', () => {
    expect(errorOf(() => load({ DB_PASSWORD_FILE: '/nonexistent/pw' })).message).toBe(
      'invalid configuration: DB_PASSWORD_FILE="/nonexistent/pw" (from env DB_PASSWORD_FILE): cannot read the file (ENOENT); expected a readable file holding the secret',
    );
    const empty = secretFile('\n');
    expect(errorOf(() => load({ DB_PASSWORD_FILE: empty })).message).toContain(
      `DB_PASSWORD_FILE="${empty}" (from env DB_PASSWORD_FILE): the file is empty`,
    );
  });
});

describe('connection URLs', () => {
  it('parses every part of DATABASE_URL including sslmode and percent-encoding', () => {
    const { config, sources } = load({
      DATABASE_URL:
        'postgresql://app%20user:p%40ss%3Aword@db.example.com:6543/my%2Ddb?sslmode=verify-full&application_name=x',
    });
    expect(config.database).toMatchObject({
      host: 'db.example.com',
      port: 6543,
      database: 'my-db',
      username: 'app user',
      password: 'p@ss:word',
      sslMode: 'verify-full',
    });
    for (const key of ['host', 'port', 'database', 'username', 'password', 'sslMode']) {
      expect(sources[`database.${key}`]).toBe('url:DATABASE_URL');
    }
  });

  it('leaves parts the URL does not have to lower sources', () => {
    const { config, sources } = load({ DATABASE_URL: 'postgres://[::1]/db' }, 'database:\n  port: 6000\n');
    expect(config.database).toMatchObject({ host: '::1', port: 6000, database: 'db', username: 'postgres' });
    expect(config.database.password).toBeUndefined();
    expect(sources['database.port']).toBe('file:config.yaml#database.port');
    expect(sources['database.sslMode']).toBe('default');
  });

  it('parses REDIS_URL with password and db path', () => {
    const { config, sources } = load({ REDIS_URL: 'redis://:s%2Fcret@cache:6380/3' });
    expect(config.redis).toEqual({ host: 'cache', port: 6380, password: 's/cret', db: 3, tls: false });
    expect(sources['redis.password']).toBe('url:REDIS_URL');
    expect(sources['redis.db']).toBe('url:REDIS_URL');
    expect(sources['redis.tls']).toBe('default');
  });

  it('parses rediss:// with a user name as TLS', () => {
    const { config } = load({ REDIS_URL: 'rediss://alice:pw@cache' });
    expect(config.redis).toEqual({
      host: 'cache',
      port: 6379,
      username: 'alice',
      password: 'pw',
      db: 0,
      tls: true,
    });
  });

  it('REDIS_HOST and friends configure Redis without a URL', () => {
    const { config, sources } = load({
      REDIS_HOST: 'r',
      REDIS_PORT: '7001',
      REDIS_PASSWORD: 'x',
      REDIS_DB: '4',
    });
    expect(config.redis).toEqual({ host: 'r', port: 7001, password: 'x', db: 4, tls: false });
    expect(sources['redis.db']).toBe('env:REDIS_DB');
  });

  it('rejects unparsable URLs and wrong schemes without echoing them', () => {
    const bad = errorOf(() => load({ DATABASE_URL: 'postgres://u:hunter2@host:notaport/db' }));
    expect(bad.message).toContain(
      'DATABASE_URL (from env DATABASE_URL) is not a valid URL: expected postgres://',
    );
    expect(bad.message).not.toContain('hunter2');
    expect(errorOf(() => load({ DATABASE_URL: 'mysql://h/db' })).message).toContain('DATABASE_URL');
    expect(errorOf(() => load({ REDIS_URL: 'http://h' })).message).toContain(
      'REDIS_URL (from env REDIS_URL) is not a valid URL: expected redis://',
    );
  });

  it('validates the parts of a URL like any other value', () => {
    expect(errorOf(() => load({ DATABASE_URL: 'postgres://h/db?sslmode=sometimes' })).message).toContain(
      'DATABASE_URL sslmode="sometimes" (from url DATABASE_URL): expected one of disable, allow, prefer, require, verify-ca, verify-full',
    );
    expect(errorOf(() => load({ REDIS_URL: 'redis://h/x' })).message).toContain(
      'REDIS_URL db="x" (from url REDIS_URL): expected an integer 0-65535',
    );
  });
});

describe('Redis Cluster nodes', () => {
  it('REDIS_CLUSTER_NODES configures Redis as a cluster from host:port and redis:// entries', () => {
    const { config, sources } = load({
      REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis://redis-1.example:7001,[::1]:7002 ',
      REDIS_PASSWORD: 'x',
    });
    expect(config.redis).toEqual({
      clusterNodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-1.example', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      host: 'localhost',
      port: 6379,
      password: 'x',
      db: 0,
      tls: false,
    });
    expect(sources['redis.clusterNodes']).toBe('env:REDIS_CLUSTER_NODES');
  });

  it('reads redis.clusterNodes and redis.cluster_nodes from the file, as a list or as text', () => {
    const camel = load({}, 'redis:\n  clusterNodes:\n    - 10.0.0.1:7000\n    - 10.0.0.2:7000\n');
    expect(camel.config.redis?.clusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7000 },
    ]);
    expect(camel.sources['redis.clusterNodes']).toBe('file:config.yaml#redis.clusterNodes');
    const snake = load({}, 'redis:\n  cluster_nodes: "10.0.0.1:7000,10.0.0.2:7000"\n');
    expect(snake.config.redis?.clusterNodes).toEqual(camel.config.redis?.clusterNodes);
    expect(snake.sources['redis.clusterNodes']).toBe('file:config.yaml#redis.cluster_nodes');
  });

  it('rejects an entry without a port, with credentials, a database or another scheme', () => {
    for (const value of [
      '10.0.0.1',
      'redis://:pw@h:7000',
      'redis://h:7000/2',
      'http://h:7000',
      'h:7000,h:x',
      ',',
    ]) {
      expect(errorOf(() => load({ REDIS_CLUSTER_NODES: value })).message).toContain('REDIS_CLUSTER_NODES=');
    }
    expect(errorOf(() => load({ REDIS_CLUSTER_NODES: '10.0.0.1' })).message).toContain(
      'expected a comma-separated list of Redis Cluster nodes as host:port or redis://host:port',
    );
  });

  it('never prints a password written into a refused cluster node entry', () => {
    const message = errorOf(() =>
      load({ REDIS_CLUSTER_NODES: 'h:7000,redis://admin:s3cret-pw@h:7001' }),
    ).message;
    expect(message).toContain('REDIS_CLUSTER_NODES="h:7000,redis://<credentials hidden>@h:7001"');
    expect(message).not.toContain('s3cret-pw');
  });

  it('rejects a database other than 0 with a cluster, naming where it came from', () => {
    expect(errorOf(() => load({ REDIS_CLUSTER_NODES: 'h:7000', REDIS_DB: '3' })).message).toContain(
      'redis.db=3 (from env REDIS_DB) cannot be used with a Redis Cluster (REDIS_CLUSTER_NODES), which has only database 0',
    );
  });
});

describe('validation errors name the source and the accepted form', () => {
  const cases: Array<[env: Record<string, string>, message: string]> = [
    [{ DB_PORT: 'abc' }, 'DB_PORT="abc" (from env DB_PORT): expected an integer 1-65535'],
    [
      { DATABASE_PORT: '70000' },
      'DATABASE_PORT="70000" (from env DATABASE_PORT): expected an integer 1-65535',
    ],
    [{ DB_PORT: '5432.5' }, 'DB_PORT="5432.5" (from env DB_PORT): expected an integer 1-65535'],
    [
      { DB_SSL_MODE: 'on' },
      'DB_SSL_MODE="on" (from env DB_SSL_MODE): expected one of disable, allow, prefer, require, verify-ca, verify-full',
    ],
    [{ DB_POOL_MAX: '0' }, 'DB_POOL_MAX="0" (from env DB_POOL_MAX): expected an integer 1-1000'],
    [
      { PROGRESS_NOTIFY_TYPE: 'kafka' },
      'PROGRESS_NOTIFY_TYPE="kafka" (from env PROGRESS_NOTIFY_TYPE): expected one of postgres, redis, polling',
    ],
    [
      { PROGRESS_POLL_INTERVAL: '1s' },
      'PROGRESS_POLL_INTERVAL="1s" (from env PROGRESS_POLL_INTERVAL): expected an integer number of milliseconds 10-3600000',
    ],
    [
      { PROGRESS_FALLBACK_AFTER: '-1' },
      'PROGRESS_FALLBACK_AFTER="-1" (from env PROGRESS_FALLBACK_AFTER): expected an integer number of milliseconds 100-3600000',
    ],
    [{ PORT: 'eighty' }, 'PORT="eighty" (from env PORT): expected an integer 0-65535 (0 picks a free port)'],
    [
      { ALLOWED_ORIGINS: 'example.com' },
      'ALLOWED_ORIGINS="example.com" (from env ALLOWED_ORIGINS): expected a comma-separated list of origins such as https://app.example.com, or *',
    ],
    [
      { ALLOWED_ORIGINS: 'https://a.example/path' },
      'ALLOWED_ORIGINS="https://a.example/path" (from env ALLOWED_ORIGINS): expected a comma-separated list',
    ],
    [{ AUTH_DISABLED: 'maybe' }, 'AUTH_DISABLED="maybe" (from env AUTH_DISABLED): expected true or false'],
    [
      { NODEBATCH_CLUSTER: 'k8s' },
      'NODEBATCH_CLUSTER="k8s" (from env NODEBATCH_CLUSTER): expected one of kubernetes, simulated',
    ],
    [
      { NODEBATCH_SIM_NODES: '0' },
      'NODEBATCH_SIM_NODES="0" (from env NODEBATCH_SIM_NODES): expected an integer 1-100000',
    ],
    [
      { NODEBATCH_SIM_LATENCY_MS: 'x' },
      'NODEBATCH_SIM_LATENCY_MS="x" (from env NODEBATCH_SIM_LATENCY_MS): expected an integer number of milliseconds 0-600000',
    ],
    [
      { NODEBATCH_SIM_FAILURE_RATE: '1.5' },
      'NODEBATCH_SIM_FAILURE_RATE="1.5" (from env NODEBATCH_SIM_FAILURE_RATE): expected a number 0-1',
    ],
    [
      { WORKER_JOB_CONCURRENCY: '2x' },
      'WORKER_JOB_CONCURRENCY="2x" (from env WORKER_JOB_CONCURRENCY): expected an integer 1-1000',
    ],
    [
      { WORKER_SHUTDOWN_GRACE_MS: 'soon' },
      'WORKER_SHUTDOWN_GRACE_MS="soon" (from env WORKER_SHUTDOWN_GRACE_MS): expected an integer number of milliseconds 0-3600000',
    ],
    [
      { EVENT_RETENTION_DAYS: '0' },
      'EVENT_RETENTION_DAYS="0" (from env EVENT_RETENTION_DAYS): expected an integer 1-3650',
    ],
    [
      { LOG_LEVEL: 'verbose' },
      'LOG_LEVEL="verbose" (from env LOG_LEVEL): expected one of fatal, error, warn, info, debug, trace, silent',
    ],
    [
      { REDIS_HOST: 'r', REDIS_PORT: 'x' },
      'REDIS_PORT="x" (from env REDIS_PORT): expected an integer 1-65535',
    ],
    [{ REDIS_HOST: 'r', REDIS_DB: '-1' }, 'REDIS_DB="-1" (from env REDIS_DB): expected an integer 0-65535'],
    [{ REDIS_HOST: 'r', REDIS_TLS: 'sure' }, 'REDIS_TLS="sure" (from env REDIS_TLS): expected true or false'],
  ];
  it.each(cases)('%j', (env, message) => {
    const error = errorOf(() => load(env));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(message);
  });

  it('names the file key and line for a bad file value', () => {
    const error = errorOf(() => load({}, 'log:\n  level: info\ndatabase:\n  port: abc\n'));
    expect(error.message).toBe(
      'invalid configuration: database.port="abc" (from file config.yaml#database.port line 4): expected an integer 1-65535',
    );
    expect(error.issues[0]).toMatchObject({ key: 'database.port' });
  });

  it('rejects a notify type of redis when Redis is not configured, never falling back', () => {
    expect(errorOf(() => load({ PROGRESS_NOTIFY_TYPE: 'redis' })).message).toContain(
      'progress.notifyType="redis" (from env PROGRESS_NOTIFY_TYPE) needs Redis: set REDIS_URL, REDIS_HOST or REDIS_CLUSTER_NODES',
    );
    expect(load({ PROGRESS_NOTIFY_TYPE: 'redis', REDIS_HOST: 'r' }).config.progress.notifyType).toBe('redis');
  });

  it('reports every problem at once', () => {
    const error = errorOf(() => load({ DB_PORT: 'abc', LOG_LEVEL: 'loud', PORT: '-1' }));
    expect(error.issues.map((issue) => issue.key)).toEqual(['database.port', 'gateway.port', 'log.level']);
    expect(error.message.split('\n')).toHaveLength(4);
  });
});

describe('warnings', () => {
  it('suggests the variable a look-alike was meant to be', () => {
    const { warnings } = load({
      DB_HOSTNAME: 'x',
      PROGRESS_NOTIFYTYPE: 'redis',
      DATABASE_PASS: 'x',
      PGHOST: 'h',
      LOGLEVEL: 'debug',
      LOG_LEVL: 'debug',
      WORKER_CONCURRENCY: '2',
      DATABASE_PASSWORD_FILE: '/run/secrets/pw',
      REDIS_URI: 'redis://r',
    });
    expect(warnings.map((w) => w.message)).toEqual([
      'DATABASE_PASS is set but nodebatch does not read it; did you mean DATABASE_PASSWORD?',
      'DATABASE_PASSWORD_FILE is set but nodebatch does not read it; did you mean DB_PASSWORD_FILE?',
      'DB_HOSTNAME is set but nodebatch does not read it; did you mean DB_HOST?',
      'LOGLEVEL is set but nodebatch does not read it; did you mean LOG_LEVEL?',
      'LOG_LEVL is set but nodebatch does not read it; did you mean LOG_LEVEL?',
      'PGHOST is set but nodebatch does not read it; did you mean DB_HOST?',
      'PROGRESS_NOTIFYTYPE is set but nodebatch does not read it; did you mean PROGRESS_NOTIFY_TYPE?',
      'REDIS_URI is set but nodebatch does not read it; did you mean REDIS_URL?',
      'WORKER_CONCURRENCY is set but nodebatch does not read it; did you mean WORKER_JOB_CONCURRENCY?',
    ]);
    expect(warnings.every((w) => w.code === 'LOOKALIKE_VARIABLE')).toBe(true);
  });

  it('does not warn about unrelated variables or Kubernetes service links', () => {
    const { warnings } = load({
      PATH: '/usr/bin',
      HOME: '/root',
      HOSTNAME: 'pod-1',
      LOG_FORMAT: 'json',
      DB_SERVICE_HOST: '10.0.0.2',
      DB_SERVICE_PORT: '5432',
      DB_PORT_5432_TCP_ADDR: '10.0.0.2',
      SOMETHING_ELSE: 'x',
    });
    expect(warnings).toEqual([]);
  });

  it('ignores a service-link REDIS_PORT=tcp://... with a warning instead of failing', () => {
    const { config, warnings } = load({ REDIS_HOST: 'r', REDIS_PORT: 'tcp://10.0.0.3:6379' });
    expect(config.redis?.port).toBe(6379);
    expect(warnings).toEqual([
      expect.objectContaining({ code: 'SERVICE_LINK_VARIABLE', variable: 'REDIS_PORT' }),
    ]);
  });

  it('warns inside Kubernetes when the database host is still the default localhost', () => {
    const { warnings } = load({ KUBERNETES_SERVICE_HOST: '10.0.0.1' });
    expect(warnings).toEqual([
      expect.objectContaining({
        code: 'KUBERNETES_DEFAULT_HOST',
        message: expect.stringContaining('set DB_HOST'),
      }),
    ]);
    expect(load({ KUBERNETES_SERVICE_HOST: '10.0.0.1', DB_HOST: 'localhost' }).warnings).toEqual([]);
    expect(load({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, 'database:\n  host: db\n').warnings).toEqual([]);
  });

  it('warns when Redis variables are set without a host', () => {
    const { config, warnings } = load({ REDIS_PORT: '6380' });
    expect(config.redis).toBeNull();
    expect(warnings).toEqual([
      expect.objectContaining({ code: 'REDIS_NOT_CONFIGURED', variable: 'REDIS_PORT' }),
    ]);
  });
});

describe("the replaced node manager's config.yaml", () => {
  const seedExample = [
    'progress:',
    '  enable_database: true',
    '  notify_type: "postgres"  # or "redis" / "polling"',
    '  poll_interval: 10000',
    '',
  ].join('\n');

  it('loads the documented progress example and says which spelling set each value', () => {
    const { config, sources, warnings } = load({}, seedExample);
    expect(config.progress).toMatchObject({ notifyType: 'postgres', pollIntervalMs: 10000 });
    expect(sources['progress.notifyType']).toBe('file:config.yaml#progress.notify_type');
    expect(sources['progress.pollIntervalMs']).toBe('file:config.yaml#progress.poll_interval');
    expect(warnings).toEqual([]);
  });

  it('reads its shared database, redis and logging keys and reports its other keys once as ignored', () => {
    const file = [
      'server:', //                                   1
      '  port: "8080"', //                             2
      '  mode: "release"', //                          3
      'database:', //                                  4
      '  type: "postgres"', //                         5
      '  host: "pg.example"', //                       6
      '  port: 6432', //                               7
      '  database: "kube_node_mgr"', //                8
      '  username: "mgr"', //                          9
      '  password: "file-S3cret"', //                 10
      '  ssl_mode: "require"', //                     11
      '  max_open_conns: 50', //                      12
      'redis:', //                                    13
      '  host: "redis.example"', //                   14
      '  port: 6380', //                              15
      '  password: "redis-S3cret"', //                16
      '  db: 2', //                                   17
      'progress:', //                                 18
      '  enable_database: true', //                   19
      '  notify_type: "redis"', //                    20
      '  poll_interval: 500', //                      21
      'jwt:', //                                      22
      '  secret: "old-secret"', //                    23
      '  expire_time: 86400', //                      24
      'logging:', //                                  25
      '  format: "json"', //                          26
      '  level: "debug"', //                          27
      'monitoring:', //                               28
      '  enabled: true', //                           29
      '',
    ].join('\n');
    const { config, sources, warnings } = load({}, file);
    expect(config.database).toMatchObject({
      host: 'pg.example',
      port: 6432,
      database: 'kube_node_mgr',
      username: 'mgr',
      password: 'file-S3cret',
      sslMode: 'require',
    });
    expect(config.redis).toMatchObject({
      host: 'redis.example',
      port: 6380,
      password: 'redis-S3cret',
      db: 2,
    });
    expect(config.progress).toMatchObject({ notifyType: 'redis', pollIntervalMs: 500 });
    expect(config.log.level).toBe('debug');
    expect(sources['database.sslMode']).toBe('file:config.yaml#database.ssl_mode');
    expect(sources['log.level']).toBe('file:config.yaml#logging.level');
    expect(sources['redis.db']).toBe('file:config.yaml#redis.db');
    const ignored = warnings.filter((w) => w.code === 'IGNORED_FILE_KEY');
    expect(ignored.map((w) => [w.key, w.message.split(':')[0]])).toEqual([
      ['server', 'config.yaml line 1'],
      ['database.type', 'config.yaml line 5'],
      ['database.max_open_conns', 'config.yaml line 12'],
      ['jwt', 'config.yaml line 22'],
      ['logging.format', 'config.yaml line 26'],
      ['monitoring', 'config.yaml line 28'],
    ]);
    expect(ignored.every((w) => w.message.includes('is ignored'))).toBe(true);
    expect(JSON.stringify(warnings)).not.toContain('S3cret');
  });

  it('rejects both spellings of one key in one file, naming both lines', () => {
    const error = errorOf(() =>
      load({}, 'progress:\n  notifyType: polling\n  poll_interval: 500\n  notify_type: postgres\n'),
    );
    expect(error.message).toContain(
      'lines 2 and 4: progress.notifyType and progress.notify_type are two spellings of one setting',
    );
    expect(error.issues.map((issue) => issue.key)).toEqual(['progress.notifyType']);
  });

  it('keeps a misspelling of a key it reads an error with a suggestion', () => {
    const error = errorOf(() =>
      load({}, 'progress:\n  notify_tpye: polling\ndatabase:\n  sslmod: require\n'),
    );
    expect(error.message).toContain(
      'line 2: unknown key progress.notify_tpye (did you mean progress.notify_type?)',
    );
    expect(error.message).toContain('line 4: unknown key database.sslmod (did you mean database.sslMode?)');
  });

  it('validates a snake_case value like its camelCase twin, naming the key as written', () => {
    const error = errorOf(() => load({}, 'progress:\n  poll_interval: "10s"\n  notify_type: kafka\n'));
    expect(error.message).toContain(
      'progress.poll_interval="10s" (from file config.yaml#progress.poll_interval line 2)',
    );
    expect(error.message).toContain(
      'progress.notify_type="kafka" (from file config.yaml#progress.notify_type line 3)',
    );
  });

  it('lets the environment outrank a snake_case key', () => {
    const { config, sources } = load({ PROGRESS_NOTIFY_TYPE: 'polling' }, seedExample);
    expect(config.progress.notifyType).toBe('polling');
    expect(sources['progress.notifyType']).toBe('env:PROGRESS_NOTIFY_TYPE');
    expect(sources['progress.pollIntervalMs']).toBe('file:config.yaml#progress.poll_interval');
  });

  it('accepts enable_database: false with a warning that it is not honoured, and rejects a non-boolean', () => {
    const { warnings } = load({}, 'progress:\n  enable_database: false\n');
    expect(warnings).toEqual([
      expect.objectContaining({
        code: 'IGNORED_FILE_KEY',
        key: 'progress.enable_database',
        message: expect.stringMatching(
          /^config\.yaml line 2: progress\.enable_database is false, but nodebatch always keeps progress in the PostgreSQL event log/,
        ),
      }),
    ]);
    expect(errorOf(() => load({}, 'progress:\n  enable_database: maybe\n')).message).toContain(
      'progress.enable_database="maybe" (from file config.yaml#progress.enable_database line 2): expected true or false',
    );
  });
});

describe('the LISTEN connection past a pooler', () => {
  it('takes host, port, database, user and password of DB_LISTEN_URL, and the rest from the pool', async () => {
    const { listenerDatabase } = await import('./database.js');
    const { config, sources } = load({
      DATABASE_URL: 'postgres://app:pool-S3cret@pgbouncer:6432/nodebatch',
      DB_LISTEN_URL: 'postgres://listener:listen-S3cret@postgres-primary:5432/nodebatch',
    });
    expect(config.database).toMatchObject({
      host: 'pgbouncer',
      port: 6432,
      listenHost: 'postgres-primary',
      listenPort: 5432,
      listenUsername: 'listener',
      listenPassword: 'listen-S3cret',
    });
    expect(sources['database.listenHost']).toBe('url:DB_LISTEN_URL');
    expect(listenerDatabase(config.database)).toEqual({
      host: 'postgres-primary',
      port: 5432,
      database: 'nodebatch',
      username: 'listener',
      password: 'listen-S3cret',
      sslMode: 'disable',
      poolMax: 1,
    });
  });

  it('DB_LISTEN_HOST and DB_LISTEN_PORT outrank DB_LISTEN_URL and the file keys; the pool credentials carry over', async () => {
    const { hasSeparateListener, listenerDatabase } = await import('./database.js');
    const { config, sources } = load(
      { DB_PASSWORD: 'pool-S3cret', DB_LISTEN_HOST: 'direct', DB_LISTEN_URL: 'postgres://other:7000/x' },
      'database:\n  host: pgbouncer\n  listenPort: 5433\n',
    );
    expect(sources['database.listenHost']).toBe('env:DB_LISTEN_HOST');
    expect(sources['database.listenPort']).toBe('url:DB_LISTEN_URL');
    expect(listenerDatabase(config.database)).toMatchObject({
      host: 'direct',
      port: 7000,
      database: 'x',
      username: 'postgres',
      password: 'pool-S3cret',
    });
    expect(hasSeparateListener(config.database)).toBe(true);
    expect(hasSeparateListener(load({}).config.database)).toBe(false);
    const fromFile = load({}, 'database:\n  listenHost: direct\n  listenPort: 5433\n');
    expect(fromFile.sources['database.listenPort']).toBe('file:config.yaml#database.listenPort');
    expect(listenerDatabase(fromFile.config.database)).toMatchObject({ host: 'direct', port: 5433 });
  });

  it('rejects an unparsable DB_LISTEN_URL naming the variable, never echoing it', () => {
    const error = errorOf(() => load({ DB_LISTEN_URL: 'mysql://u:hidden-S3cret@h/db' }));
    expect(error.message).toContain('DB_LISTEN_URL (from env DB_LISTEN_URL) is not a valid URL');
    expect(error.message).not.toContain('hidden-S3cret');
  });
});

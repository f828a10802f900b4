import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { CONFIG_FIELDS, type ConfigField, type Env, type UrlVariable } from './config-fields.js';
import { ConfigError, type ConfigIssue } from './config-error.js';
import { readConfigFile, type ConfigFile } from './config-file.js';
import { isServiceLinkVariable, lookalikeWarnings, type ConfigWarning } from './config-warning.js';
import { parseDatabaseUrl, parseRedisUrl, UrlParseError, type UrlParts } from './connection-urls.js';
import { isInKubernetes } from './kubernetes.js';
import type { NodebatchConfig } from './nodebatch-config.js';

export interface LoadConfigOptions {
  /** Environment to read. Default: process.env. */
  env?: Env;
  /** Directory that `./config.yaml`, a relative CONFIG_FILE and relative *_FILE paths are resolved against. Default: process.cwd(). */
  cwd?: string;
}

export interface LoadedConfig {
  /** The effective configuration, deep-frozen. */
  config: NodebatchConfig;
  /**
   * Where each dotted key's value came from: `env:DB_HOST`,
   * `file:config.yaml#database.host`, `url:DATABASE_URL` or `default`.
   * When Redis is not configured there is one entry `redis: default`.
   */
  sources: Readonly<Record<string, string>>;
  /** Each distinct warning once; log them with logConfigWarnings. */
  warnings: readonly ConfigWarning[];
}

/** A raw value and where it came from, before validation. */
interface Candidate {
  raw: unknown;
  source: string;
  /** What the user calls it: the variable, file key or URL part. */
  label: string;
  /** Human form of the source for messages, with the file line. */
  where: string;
}

/**
 * Loads the configuration: `DB_*` > `DATABASE_*` > `DATABASE_URL` > YAML file
 * (CONFIG_FILE, else ./config.yaml when present) > defaults, and likewise
 * REDIS_* > REDIS_URL > file > defaults. Every invalid value is reported
 * in one ConfigError; secrets are never echoed.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const issues: ConfigIssue[] = [];
  const warnings: ConfigWarning[] = [...lookalikeWarnings(env)];

  // An empty variable counts as unset: manifests often carry `DB_HOST: ""`
  // as a placeholder, and it must not outrank a real value further down.
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };

  const file = readConfigFile({ configFile: read('CONFIG_FILE'), cwd });
  for (const ignored of file?.ignored ?? []) {
    warnings.push({
      code: 'IGNORED_FILE_KEY',
      key: ignored.key,
      message: `${file!.label} line ${ignored.line}: ${ignored.key} is ignored: nodebatch does not use this key of the node manager it replaces${ignored.note ? ` (${ignored.note})` : ''}`,
    });
  }
  if (file?.databaseDisabledLine !== undefined) {
    warnings.push({
      code: 'IGNORED_FILE_KEY',
      key: 'progress.enable_database',
      message: `${file.label} line ${file.databaseDisabledLine}: progress.enable_database is false, but nodebatch always keeps progress in the PostgreSQL event log (every replica needs it); the value is ignored`,
    });
  }
  const urls = new Map<UrlVariable, UrlParts>();
  for (const [variable, parse] of [
    ['DATABASE_URL', parseDatabaseUrl],
    ['DB_LISTEN_URL', (value: string) => parseDatabaseUrl(value, 'DB_LISTEN_URL')],
    ['REDIS_URL', parseRedisUrl],
  ] as const) {
    const value = read(variable);
    if (value === undefined) continue;
    try {
      urls.set(variable, parse(value));
    } catch (error) {
      if (!(error instanceof UrlParseError)) throw error;
      // The value is not echoed: an unparsable URL may still hold a password.
      issues.push({
        key: variable,
        source: `env ${variable}`,
        message: `${variable} (from env ${variable}) is not a valid URL: expected ${error.expected}`,
      });
    }
  }

  const redisConfigured =
    read('REDIS_URL') !== undefined ||
    read('REDIS_HOST') !== undefined ||
    read('REDIS_CLUSTER_NODES') !== undefined ||
    !!file?.sections.has('redis');
  if (!redisConfigured) {
    for (const name of [
      'REDIS_PORT',
      'REDIS_PASSWORD',
      'REDIS_PASSWORD_FILE',
      'REDIS_DB',
      'REDIS_USERNAME',
      'REDIS_TLS',
    ]) {
      if (read(name) === undefined || isServiceLinkVariable(name, read(name))) continue;
      warnings.push({
        code: 'REDIS_NOT_CONFIGURED',
        variable: name,
        message: `${name} is set but Redis is not configured, so it is ignored; set REDIS_HOST, REDIS_URL or REDIS_CLUSTER_NODES`,
      });
    }
  }

  const values = new Map<string, unknown>();
  const sources: Record<string, string> = {};
  for (const field of CONFIG_FIELDS) {
    if (field.key.startsWith('redis.') && !redisConfigured) continue;
    const candidate = findCandidate(field, { read, cwd, file, urls, issues, warnings });
    if (candidate === undefined) {
      const fallback = field.default?.(env);
      if (fallback !== undefined) values.set(field.key, fallback);
      sources[field.key] = 'default';
      continue;
    }
    const parsed = field.value.schema.safeParse(candidate.raw);
    sources[field.key] = candidate.source;
    if (parsed.success) {
      values.set(field.key, parsed.data);
      continue;
    }
    const shown = field.secret ? '<hidden>' : JSON.stringify(withoutCredentials(candidate.raw));
    const explained = field.value.explain?.(parsed.error);
    issues.push({
      key: field.key,
      source: candidate.where,
      message: explained
        ? `${candidate.label} (from ${candidate.where}): ${explained}; expected ${field.value.expected}`
        : `${candidate.label}=${shown} (from ${candidate.where}): expected ${field.value.expected}`,
    });
  }
  if (!redisConfigured) sources.redis = 'default';

  // A Redis Cluster has only database 0 (SELECT fails on it).
  if (values.has('redis.clusterNodes') && values.get('redis.db') !== 0) {
    const where = describeSource(sources['redis.db'] ?? 'default');
    issues.push({
      key: 'redis.db',
      source: where,
      message: `redis.db=${String(values.get('redis.db'))} (from ${where}) cannot be used with a Redis Cluster (REDIS_CLUSTER_NODES), which has only database 0; remove it or set 0`,
    });
  }
  if (values.get('progress.notifyType') === 'redis' && !redisConfigured) {
    const where = describeSource(sources['progress.notifyType'] ?? 'default');
    issues.push({
      key: 'progress.notifyType',
      source: where,
      message: `progress.notifyType="redis" (from ${where}) needs Redis: set REDIS_URL, REDIS_HOST or REDIS_CLUSTER_NODES, or choose postgres or polling`,
    });
  }
  if (values.get('cluster.mode') === 'simulated' && values.has('cluster.clusters')) {
    // Asked to simulate, with real clusters listed: never guess which one was meant.
    const where = describeSource(sources['cluster.mode'] ?? 'default');
    issues.push({
      key: 'cluster.mode',
      source: where,
      message: `cluster.mode="simulated" (from ${where}) applies only without cluster.clusters (from ${describeSource(sources['cluster.clusters'] ?? 'default')}); give the listed clusters that should be simulated mode: simulated instead`,
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);

  if (isInKubernetes(env) && sources['database.host'] === 'default') {
    warnings.push({
      code: 'KUBERNETES_DEFAULT_HOST',
      variable: 'DB_HOST',
      message:
        'running inside Kubernetes (KUBERNETES_SERVICE_HOST is set) but the database host is the default "localhost"; set DB_HOST or DATABASE_URL to the database service',
    });
  }

  return {
    config: deepFreeze(assemble(values, redisConfigured)),
    sources: Object.freeze(sources),
    warnings: Object.freeze(unique(warnings)),
  };
}

function findCandidate(
  field: ConfigField,
  context: {
    read: (name: string) => string | undefined;
    cwd: string;
    file: ConfigFile | undefined;
    urls: Map<UrlVariable, UrlParts>;
    issues: ConfigIssue[];
    warnings: ConfigWarning[];
  },
): Candidate | undefined {
  const { read } = context;
  let found: Candidate | undefined;
  for (const name of field.env) {
    const value = read(name);
    if (value === undefined) continue;
    if (found) {
      // Only worth saying when both forms of one tier are set, e.g. DB_PASSWORD and DB_PASSWORD_FILE.
      if (sameTier(found.label, name)) {
        context.warnings.push({
          code: 'SHADOWED_VARIABLE',
          variable: name,
          message: `${name} is ignored because ${found.label} is set too`,
        });
      }
      continue;
    }
    if (isServiceLinkVariable(name, value)) {
      context.warnings.push({
        code: 'SERVICE_LINK_VARIABLE',
        variable: name,
        message: `${name}=${JSON.stringify(value)} looks like a Kubernetes service link variable and is ignored; set enableServiceLinks: false on the pod, or use ${name.startsWith('REDIS') ? 'REDIS_URL' : 'DB_PORT with a number'}`,
      });
      continue;
    }
    if (name.endsWith('_FILE')) {
      const contents = readSecretFile(name, value, context.cwd, context.issues);
      found = { raw: contents ?? '', source: `env:${name}`, label: name, where: `env ${name}` };
      if (contents === undefined) return undefined;
      continue;
    }
    found = { raw: value, source: `env:${name}`, label: name, where: `env ${name}` };
  }
  if (found) return found;

  if (field.url) {
    const part = context.urls.get(field.url.variable)?.[field.url.part];
    if (part !== undefined) {
      return {
        raw: part,
        source: `url:${field.url.variable}`,
        label: `${field.url.variable} ${field.url.part}`,
        where: `url ${field.url.variable}`,
      };
    }
  }

  const fromFile = context.file?.values.get(field.key);
  if (fromFile && context.file) {
    // Named as written, so `nodebatch config` shows which spelling set it.
    return {
      raw: fromFile.value,
      source: `file:${context.file.label}#${fromFile.spelling}`,
      label: fromFile.spelling,
      where: `file ${context.file.label}#${fromFile.spelling} line ${fromFile.line}`,
    };
  }
  return undefined;
}

/** DB_PASSWORD and DB_PASSWORD_FILE are one tier; DB_PASSWORD and DATABASE_PASSWORD are not. */
function sameTier(a: string, b: string): boolean {
  return a.replace(/_FILE$/, '') === b.replace(/_FILE$/, '');
}

/** Reads a mounted secret; the trailing newline editors and `echo` add is not part of it. */
function readSecretFile(name: string, path: string, cwd: string, issues: ConfigIssue[]): string | undefined {
  const absolute = isAbsolute(path) ? path : resolve(cwd, path);
  try {
    const contents = readFileSync(absolute, 'utf8').replace(/[\r\n]+$/, '');
    if (contents === '') {
      issues.push({
        key: name,
        source: `env ${name}`,
        message: `${name}=${JSON.stringify(path)} (from env ${name}): the file is empty; expected a file holding the secret`,
      });
      return undefined;
    }
    return contents;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    issues.push({
      key: name,
      source: `env ${name}`,
      message: `${name}=${JSON.stringify(path)} (from env ${name}): cannot read the file (${code}); expected a readable file holding the secret`,
    });
    return undefined;
  }
}

function describeSource(source: string): string {
  if (source === 'default') return 'default';
  const [kind, rest] = [source.slice(0, source.indexOf(':')), source.slice(source.indexOf(':') + 1)];
  return `${kind} ${rest}`;
}

function assemble(values: Map<string, unknown>, redisConfigured: boolean): NodebatchConfig {
  const tree: Record<string, Record<string, unknown> | null> = {};
  for (const field of CONFIG_FIELDS) {
    const [section = '', key = ''] = field.key.split('.');
    tree[section] ??= {};
    if (values.has(field.key)) tree[section]![key] = values.get(field.key);
  }
  if (!redisConfigured) tree.redis = null;
  return tree as unknown as NodebatchConfig;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function unique(warnings: ConfigWarning[]): ConfigWarning[] {
  const seen = new Set<string>();
  return warnings.filter((warning) => !seen.has(warning.message) && seen.add(warning.message));
}

/**
 * A refused value as an error may show it: any `scheme://user:password@` in
 * it loses the part before the `@`, so a password written where it does not
 * belong (a cluster node list, a host) is not printed with the error.
 */
function withoutCredentials(raw: unknown): unknown {
  if (typeof raw === 'string') return raw.replace(/(:\/\/)[^/@\s,]*@/g, '$1<credentials hidden>@');
  if (Array.isArray(raw)) return raw.map(withoutCredentials);
  return raw;
}

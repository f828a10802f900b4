import type { UrlVariable } from './config-fields.js';

/** The parts of a connection URL, as text, each validated later by its key's schema. */
export type UrlParts = Partial<Record<string, string>>;

export class UrlParseError extends Error {
  constructor(
    readonly variable: UrlVariable,
    readonly expected: string,
    options?: { cause?: unknown },
  ) {
    super(`${variable} is not a valid URL`, options);
    this.name = 'UrlParseError';
  }
}

const DATABASE_URL_FORM = 'postgres://user:password@host:port/database?sslmode=disable';
const REDIS_URL_FORM = 'redis://[user]:password@host:port/db (or rediss:// for TLS)';

function decode(part: string): string | undefined {
  if (part === '') return undefined;
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function host(url: URL): string | undefined {
  // WHATWG URL keeps the brackets of an IPv6 literal; drivers want it bare.
  return decode(url.hostname.replace(/^\[(.*)\]$/, '$1'));
}

/**
 * `postgres://` or `postgresql://` URL as libpq documents it. Only the parts
 * present are returned, so a URL without a port leaves the port to the file
 * or the default rather than overriding it.
 */
export function parseDatabaseUrl(
  value: string,
  variable: 'DATABASE_URL' | 'DB_LISTEN_URL' = 'DATABASE_URL',
): UrlParts {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch (error) {
    throw new UrlParseError(variable, DATABASE_URL_FORM, { cause: error });
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new UrlParseError(variable, DATABASE_URL_FORM);
  }
  return {
    host: host(url),
    port: url.port || undefined,
    database: decode(url.pathname.replace(/^\//, '')),
    username: decode(url.username),
    password: decode(url.password),
    sslmode: url.searchParams.get('sslmode') ?? undefined,
  };
}

/** `redis://` or `rediss://` (TLS) URL; the path is the database number. */
export function parseRedisUrl(value: string): UrlParts {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch (error) {
    throw new UrlParseError('REDIS_URL', REDIS_URL_FORM, { cause: error });
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UrlParseError('REDIS_URL', REDIS_URL_FORM);
  }
  return {
    host: host(url),
    port: url.port || undefined,
    db: decode(url.pathname.replace(/^\//, '')),
    username: decode(url.username),
    password: decode(url.password),
    tls: url.protocol === 'rediss:' ? 'true' : undefined,
  };
}

/**
 * The URL with its password replaced by `***`, for messages and logs. Text
 * that does not parse as a URL is replaced entirely: it might be a password.
 */
export function maskUrlPassword(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '<not a URL>';
  }
}

import { isInKubernetes } from '@nodebatch/config';
import { causeChain, errorMessage } from '@nodebatch/progress';
import type { ConnectionDiagnosis } from '@nodebatch/progress';

/**
 * Where a connection was going, as it may be shown: describeDatabase() and
 * describeRedis() of @nodebatch/config fit it. Never holds a password.
 */
export interface ConnectionTarget {
  /** What was dialed. Default `postgres`. */
  service?: 'postgres' | 'redis';
  host: string;
  port: number;
  database?: string | number;
  username?: string;
  sslMode?: string;
  tls?: boolean;
  passwordSet: boolean;
}

export type ConnectionFailureKind =
  | 'refused'
  | 'name-not-resolved'
  | 'timeout'
  | 'unreachable'
  | 'authentication'
  | 'database-missing'
  | 'ssl'
  | 'server-not-ready'
  | 'too-many-connections'
  | 'unknown';

export interface ConnectionErrorDiagnosis extends ConnectionDiagnosis {
  kind: ConnectionFailureKind;
  /** The driver's message, found along the cause chain. */
  message: string;
}

/**
 * Explains why a connection failed, with a checklist for the cause at hand:
 * the old system printed one line with no host, user, SSL mode or hint.
 * Used by the notifier at start and by `doctor`.
 */
export function diagnoseConnectionError(
  err: unknown,
  target: ConnectionTarget,
  env: Record<string, string | undefined> = process.env,
): ConnectionErrorDiagnosis {
  const service = target.service ?? 'postgres';
  const name = service === 'postgres' ? 'PostgreSQL' : 'Redis';
  const vars = service === 'postgres' ? POSTGRES_VARS : REDIS_VARS;
  const where = `${target.host}:${target.port}`;
  const { code, message } = rootCause(err);
  const kind = classify(code, message);
  const checklist: string[] = [];

  if (isInKubernetes(env) && LOCAL_HOSTS.has(target.host.toLowerCase())) {
    checklist.push(
      `Running inside Kubernetes with host ${target.host}: ${vars.host} is probably not set, so the default was used. ` +
        `Set ${vars.host} to the ${name} service name (e.g. postgres.<namespace>.svc.cluster.local).`,
    );
  }

  let summary: string;
  switch (kind) {
    case 'refused':
      summary = `connection to ${name} at ${where} refused`;
      checklist.push(
        `Is ${name} running on ${target.host}? (${service === 'postgres' ? `pg_isready -h ${target.host} -p ${target.port}` : `redis-cli -h ${target.host} -p ${target.port} ping`})`,
        `Is ${target.port} the port it listens on? (${vars.port})`,
        service === 'postgres'
          ? 'Does it accept TCP connections on this interface? (listen_addresses in postgresql.conf)'
          : 'Does it accept connections on this interface? (bind in redis.conf)',
      );
      break;
    case 'name-not-resolved':
      summary = `host name ${target.host} of ${name} does not resolve (${code})`;
      checklist.push(
        `Is "${target.host}" the right service name? (${vars.host})`,
        'A service in another namespace needs <service>.<namespace> or <service>.<namespace>.svc.cluster.local.',
        `Does DNS answer from here? (getent hosts ${target.host}; nslookup ${target.host})`,
      );
      break;
    case 'timeout':
      summary = `connection to ${name} at ${where} timed out`;
      checklist.push(
        `Does a NetworkPolicy block traffic from this pod to ${where}?`,
        `Does a firewall or security group drop connections to port ${target.port}?`,
        `Is ${target.host} reachable from here at all, and is the server overloaded?`,
      );
      break;
    case 'unreachable':
      summary = `no network route to ${name} at ${where} (${code})`;
      checklist.push(
        `Is ${target.host} an address reachable from this network?`,
        'Does a NetworkPolicy, firewall or VPN route block it?',
      );
      break;
    case 'authentication':
      summary = `${name} at ${where} rejected the credentials${target.username ? ` of user "${target.username}"` : ''}`;
      if (target.username !== undefined)
        checklist.push(`Is the username "${target.username}" right? (${vars.user})`);
      checklist.push(
        target.passwordSet
          ? `Is the password right? (${vars.password}; in Kubernetes, the Secret the deployment mounts)`
          : `No password is set: set ${vars.password} (in Kubernetes, from a Secret).`,
      );
      if (service === 'postgres') {
        checklist.push('Does pg_hba.conf allow this user from this address with this method?');
      }
      break;
    case 'database-missing':
      summary = `database "${target.database ?? '?'}" does not exist on ${name} at ${where}`;
      checklist.push(
        `Create it (createdb -h ${target.host} -p ${target.port}${target.username ? ` -U ${target.username}` : ''} ${target.database ?? ''}) or fix the name (${vars.database}).`,
        'Is this the server you meant? A fresh server has only the postgres database.',
      );
      break;
    case 'ssl':
      summary = `SSL negotiation with ${name} at ${where} failed${target.sslMode ? ` (SSL mode ${target.sslMode})` : ''}`;
      checklist.push(
        `Does the SSL mode match the server? (${vars.ssl}: disable if it has no TLS, require if it demands it)`,
        'For verify-ca / verify-full: is the server certificate signed by a trusted CA and issued for this host name?',
      );
      break;
    case 'server-not-ready':
      summary = `${name} at ${where} is starting up or shutting down`;
      checklist.push('Wait for the server to finish starting; nodebatch keeps retrying.');
      break;
    case 'too-many-connections':
      summary = `${name} at ${where} has no connection slot left`;
      checklist.push(
        'Lower the pool size (DB_POOL_MAX) of each replica, or raise max_connections on the server.',
      );
      break;
    case 'unknown':
      summary = `cannot connect to ${name} at ${where}: ${message}`;
      checklist.push(
        `Check host, port, credentials and SSL mode (${vars.host}, ${vars.port}, ${vars.user}, ${vars.password}).`,
      );
      break;
  }
  return { code, kind, summary, message, checklist };
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

const POSTGRES_VARS = {
  host: 'DB_HOST',
  port: 'DB_PORT',
  user: 'DB_USERNAME / DB_USER',
  password: 'DB_PASSWORD or DB_PASSWORD_FILE',
  database: 'DB_DATABASE / DB_NAME',
  ssl: 'DB_SSL_MODE',
};

const REDIS_VARS = {
  host: 'REDIS_HOST or REDIS_URL',
  port: 'REDIS_PORT',
  user: 'REDIS_URL',
  password: 'REDIS_PASSWORD',
  database: 'REDIS_DB',
  ssl: 'REDIS_URL (rediss://)',
};

const REFUSED = new Set(['ECONNREFUSED']);
const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);
const TIMEOUT = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNABORTED']);
const UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);
const AUTH = new Set(['28P01', '28000']);
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'EPROTO',
]);

function classify(code: string, message: string): ConnectionFailureKind {
  const lower = message.toLowerCase();
  if (REFUSED.has(code)) return 'refused';
  if (DNS.has(code)) return 'name-not-resolved';
  if (UNREACHABLE.has(code)) return 'unreachable';
  if (code === '3D000') return 'database-missing';
  if (
    TLS_CODES.has(code) ||
    lower.includes('ssl') ||
    lower.includes('tls') ||
    lower.includes('no encryption')
  ) {
    return 'ssl';
  }
  if (AUTH.has(code) || lower.includes('wrongpass') || lower.includes('noauth')) return 'authentication';
  if (TIMEOUT.has(code) || lower.includes('timeout') || lower.includes('timed out')) return 'timeout';
  if (code === '57P03') return 'server-not-ready';
  if (code === '53300') return 'too-many-connections';
  return 'unknown';
}

/**
 * The most specific code and message along the cause chain: the notifier's
 * TransportUnavailableError wraps the driver's error, and Node reports a
 * failed dual-stack connect as an AggregateError of one error per address.
 */
function rootCause(err: unknown): { code: string; message: string } {
  let code: string | undefined;
  let message: string | undefined;
  /** The innermost message: the driver's own words, without our wrappers' context. */
  let innermost: string | undefined;
  const messages: string[] = [];
  for (const current of causeChain(err)) {
    const candidate = (current as { code?: unknown }).code;
    const text = (current as { message?: unknown }).message;
    if (typeof text === 'string' && text) {
      innermost = text;
      messages.push(text);
    }
    if (typeof candidate === 'string' && !WRAPPER_CODES.has(candidate)) {
      code = candidate;
      if (typeof text === 'string' && text) message = text;
    }
  }
  if (code === undefined) {
    // Some clients keep the system error only in the text ("connect ECONNREFUSED 127.0.0.1:6379"),
    // and wrap it in one without a code; the outermost message then carries it.
    for (const text of messages) {
      const match = KNOWN_CODE_IN_TEXT.exec(text);
      if (match) return { code: match[1]!, message: text };
    }
  }
  const fallbackMessage = innermost ?? errorMessage(err);
  return {
    code: code ?? (/timeout|timed out/i.test(fallbackMessage) ? 'TIMEOUT' : 'UNKNOWN'),
    message: message ?? fallbackMessage,
  };
}

const KNOWN_CODE_IN_TEXT =
  /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|WRONGPASS|NOAUTH)\b/;

/** Codes of our own wrappers, which say that something failed but not why. */
const WRAPPER_CODES = new Set(['TRANSPORT_UNAVAILABLE', 'EVENT_STORE_UNAVAILABLE']);

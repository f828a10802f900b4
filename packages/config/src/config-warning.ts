import type { Logger } from 'pino';
import { ACCEPTED_ENV_VARS, type Env } from './config-fields.js';
import { closestName } from './lookalike.js';

export type ConfigWarningCode =
  | 'LOOKALIKE_VARIABLE'
  | 'KUBERNETES_DEFAULT_HOST'
  | 'SERVICE_LINK_VARIABLE'
  | 'SHADOWED_VARIABLE'
  | 'REDIS_NOT_CONFIGURED'
  | 'IGNORED_FILE_KEY';

/** Something that loads fine but is probably not what the operator meant. */
export interface ConfigWarning {
  code: ConfigWarningCode;
  /** The environment variable the warning is about, when there is one. */
  variable?: string;
  /** The file key the warning is about, when there is one. */
  key?: string;
  message: string;
}

/** Prefixes of our variables: an unknown name with one of them is most likely a typo of ours. */
const OUR_PREFIXES = [
  'DB_',
  'DATABASE_',
  'REDIS_',
  'PROGRESS_',
  'NODEBATCH_',
  'AUTH_',
  'WORKER_',
  'QUEUE_',
  'EVENT_',
  'GATEWAY_',
  'LOG_',
];

/** Variables of other PostgreSQL tools that people expect us to read. */
const FOREIGN_NAMES: Readonly<Record<string, string>> = {
  PGHOST: 'DB_HOST',
  PGPORT: 'DB_PORT',
  PGDATABASE: 'DB_DATABASE',
  PGUSER: 'DB_USERNAME',
  PGPASSWORD: 'DB_PASSWORD',
  PGSSLMODE: 'DB_SSL_MODE',
  POSTGRES_HOST: 'DB_HOST',
  POSTGRES_PORT: 'DB_PORT',
  POSTGRES_DB: 'DB_DATABASE',
  POSTGRES_USER: 'DB_USERNAME',
  POSTGRES_PASSWORD: 'DB_PASSWORD',
  DATABASE_PASSWORD_FILE: 'DB_PASSWORD_FILE',
};

/**
 * Kubernetes injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT=tcp://...`
 * and `<SERVICE>_PORT_<n>_TCP*` for every service in the namespace; a
 * service named `redis` or `db` produces names that look like ours.
 */
export function isServiceLinkVariable(name: string, value: string | undefined): boolean {
  return (
    /_SERVICE_(HOST|PORT)(_.+)?$/.test(name) ||
    /_PORT_\d+_(TCP|UDP|SCTP)(_.+)?$/.test(name) ||
    (/_PORT$/.test(name) && /^(tcp|udp|sctp):\/\//.test(value ?? ''))
  );
}

/** Warnings for variables that look like ours but are not read ("did you mean DB_HOST?"). */
export function lookalikeWarnings(env: Env): ConfigWarning[] {
  const accepted = new Set(ACCEPTED_ENV_VARS);
  const warnings: ConfigWarning[] = [];
  for (const name of Object.keys(env).sort()) {
    if (accepted.has(name) || env[name] === undefined || isServiceLinkVariable(name, env[name])) continue;
    const foreign = FOREIGN_NAMES[name];
    const suggestion =
      foreign ??
      (OUR_PREFIXES.some((prefix) => name.startsWith(prefix))
        ? closestName(name, ACCEPTED_ENV_VARS)
        : // Elsewhere only an exact match without separators counts, or PATH
          // would be "a typo of PORT".
          ACCEPTED_ENV_VARS.find((candidate) => candidate.replace(/_/g, '') === name.replace(/_/g, '')));
    if (!suggestion) continue;
    warnings.push({
      code: 'LOOKALIKE_VARIABLE',
      variable: name,
      message: `${name} is set but nodebatch does not read it; did you mean ${suggestion}?`,
    });
  }
  return warnings;
}

const logged = new Set<string>();

/**
 * Logs each warning once per process: every service loads the configuration
 * at start and some again later, and the same warning repeated is noise that
 * hides the next one.
 */
export function logConfigWarnings(logger: Pick<Logger, 'warn'>, warnings: readonly ConfigWarning[]): void {
  for (const warning of warnings) {
    if (logged.has(warning.message)) continue;
    logged.add(warning.message);
    logger.warn({ code: warning.code, variable: warning.variable, key: warning.key }, warning.message);
  }
}

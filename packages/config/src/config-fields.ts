import { clusterList } from './cluster-list.js';
import { CLUSTER_MODES, LOG_LEVELS, NOTIFY_TYPES, ROLES, SSL_MODES } from './nodebatch-config.js';
import {
  boolean,
  clusterNodeList,
  decimal,
  httpUrl,
  integer,
  oneOf,
  originList,
  prefixList,
  roleList,
  roleMap,
  secret,
  text,
  type ValueSchema,
} from './value-schemas.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** The connection URLs whose parts feed single keys; see connection-urls.ts. */
export type UrlVariable = 'DATABASE_URL' | 'DB_LISTEN_URL' | 'REDIS_URL';

/**
 * One configuration key and every place its value may come from. Sources are
 * tried in this order: `env` (highest first; a name ending in `_FILE` names a
 * file holding the value, as Kubernetes mounts secrets), then the part of a
 * connection URL, then the YAML file at the same dotted path, then the default.
 */
export interface ConfigField {
  key: string;
  env: readonly string[];
  url?: { variable: UrlVariable; part: string };
  value: ValueSchema<unknown>;
  /** Absent means the key is optional and stays unset. */
  default?: (env: Env) => unknown;
  /** Shown only as `set` / `not set`, never echoed in errors. */
  secret?: boolean;
  /**
   * Other spellings of the key in the YAML file: the snake_case keys of the
   * replaced system's config.yaml. One file may use only one spelling per key.
   */
  fileAliases?: readonly string[];
}

const port = integer(1, 65535);
const milliseconds = (min: number, max: number) => integer(min, max, 'an integer number of milliseconds');

/** Every key of NodebatchConfig, in the order `nodebatch config` prints them. */
export const CONFIG_FIELDS: readonly ConfigField[] = [
  // DB_* outranks DATABASE_*: the Kubernetes manifests of the tool this
  // replaces set DB_HOST and it was ignored in favour of localhost.
  {
    key: 'database.host',
    env: ['DB_HOST', 'DATABASE_HOST'],
    url: { variable: 'DATABASE_URL', part: 'host' },
    value: text('a host name or IP address'),
    default: () => 'localhost',
  },
  {
    key: 'database.port',
    env: ['DB_PORT', 'DATABASE_PORT'],
    url: { variable: 'DATABASE_URL', part: 'port' },
    value: port,
    default: () => 5432,
  },
  {
    key: 'database.database',
    env: ['DB_DATABASE', 'DB_NAME', 'DATABASE_DATABASE', 'DATABASE_NAME'],
    url: { variable: 'DATABASE_URL', part: 'database' },
    value: text('a database name'),
    default: () => 'nodebatch',
  },
  {
    key: 'database.username',
    env: ['DB_USERNAME', 'DB_USER', 'DATABASE_USERNAME', 'DATABASE_USER'],
    url: { variable: 'DATABASE_URL', part: 'username' },
    value: text('a user name'),
    default: () => 'postgres',
  },
  {
    key: 'database.password',
    env: ['DB_PASSWORD', 'DB_PASSWORD_FILE', 'DATABASE_PASSWORD'],
    url: { variable: 'DATABASE_URL', part: 'password' },
    value: secret(),
    secret: true,
  },
  {
    key: 'database.sslMode',
    env: ['DB_SSL_MODE', 'DB_SSLMODE', 'DATABASE_SSL_MODE', 'DATABASE_SSLMODE'],
    url: { variable: 'DATABASE_URL', part: 'sslmode' },
    fileAliases: ['database.ssl_mode'],
    value: oneOf(SSL_MODES),
    // node-postgres has no opportunistic TLS, so libpq's default `prefer`
    // would be a lie; say what actually happens.
    default: () => 'disable',
  },
  {
    key: 'database.poolMax',
    env: ['DB_POOL_MAX', 'DATABASE_POOL_MAX'],
    value: integer(1, 1000),
    default: () => 10,
  },
  // LISTEN does not work through a pooler in transaction mode (PgBouncer):
  // the listener's one connection may need to reach PostgreSQL itself while
  // the pool goes through the pooler. Each part left out is the pool's.
  {
    key: 'database.listenHost',
    env: ['DB_LISTEN_HOST'],
    url: { variable: 'DB_LISTEN_URL', part: 'host' },
    value: text('a host name or IP address'),
  },
  {
    key: 'database.listenPort',
    env: ['DB_LISTEN_PORT'],
    url: { variable: 'DB_LISTEN_URL', part: 'port' },
    value: port,
  },
  {
    key: 'database.listenDatabase',
    env: [],
    url: { variable: 'DB_LISTEN_URL', part: 'database' },
    value: text('a database name'),
  },
  {
    key: 'database.listenUsername',
    env: [],
    url: { variable: 'DB_LISTEN_URL', part: 'username' },
    value: text('a user name'),
  },
  {
    key: 'database.listenPassword',
    env: [],
    url: { variable: 'DB_LISTEN_URL', part: 'password' },
    value: secret(),
    secret: true,
  },
  // A Redis Cluster: the seed nodes; the client learns the rest from them.
  {
    key: 'redis.clusterNodes',
    env: ['REDIS_CLUSTER_NODES'],
    fileAliases: ['redis.cluster_nodes'],
    value: clusterNodeList(),
  },
  {
    key: 'redis.host',
    env: ['REDIS_HOST'],
    url: { variable: 'REDIS_URL', part: 'host' },
    value: text('a host name or IP address'),
    default: () => 'localhost',
  },
  {
    key: 'redis.port',
    env: ['REDIS_PORT'],
    url: { variable: 'REDIS_URL', part: 'port' },
    value: port,
    default: () => 6379,
  },
  {
    key: 'redis.username',
    env: ['REDIS_USERNAME'],
    url: { variable: 'REDIS_URL', part: 'username' },
    value: text('a user name'),
  },
  {
    key: 'redis.password',
    env: ['REDIS_PASSWORD', 'REDIS_PASSWORD_FILE'],
    url: { variable: 'REDIS_URL', part: 'password' },
    value: secret(),
    secret: true,
  },
  {
    key: 'redis.db',
    env: ['REDIS_DB'],
    url: { variable: 'REDIS_URL', part: 'db' },
    value: integer(0, 65535),
    default: () => 0,
  },
  {
    key: 'redis.tls',
    env: ['REDIS_TLS'],
    url: { variable: 'REDIS_URL', part: 'tls' },
    value: boolean(),
    default: () => false,
  },
  {
    key: 'progress.notifyType',
    env: ['PROGRESS_NOTIFY_TYPE'],
    fileAliases: ['progress.notify_type'],
    value: oneOf(NOTIFY_TYPES),
    default: () => 'postgres',
  },
  {
    key: 'progress.pollIntervalMs',
    env: ['PROGRESS_POLL_INTERVAL'],
    // Milliseconds there too, so the number carries over as it is.
    fileAliases: ['progress.poll_interval'],
    value: milliseconds(10, 3_600_000),
    default: () => 1000,
  },
  {
    key: 'progress.fallbackAfterMs',
    env: ['PROGRESS_FALLBACK_AFTER'],
    value: milliseconds(100, 3_600_000),
    default: () => 5000,
  },
  // One NOTIFY or PUBLISH per append transaction; off until every gateway reads combined hints.
  {
    key: 'progress.combinedHints',
    env: ['PROGRESS_COMBINED_HINTS'],
    value: boolean(),
    default: () => false,
  },
  // Signs and checks the events inline in hints: a verified one needs no log read. The same on workers and gateways.
  {
    key: 'progress.hintKey',
    env: ['PROGRESS_HINT_KEY', 'PROGRESS_HINT_KEY_FILE'],
    value: secret({ minBytes: 32 }),
    secret: true,
  },
  {
    key: 'gateway.port',
    env: ['PORT'],
    // 0 lets the system pick a free port: tests and the demo start several gateways.
    value: { ...integer(0, 65535), expected: 'an integer 0-65535 (0 picks a free port)' },
    default: () => 8080,
  },
  { key: 'gateway.allowedOrigins', env: ['ALLOWED_ORIGINS'], value: originList(), default: () => [] },
  // Keeps /metrics and the database host in /readyz off a public ingress.
  { key: 'gateway.metricsPort', env: ['METRICS_PORT'], value: integer(0, 65535) },
  {
    key: 'auth.jwtSecret',
    env: ['AUTH_JWT_SECRET', 'AUTH_JWT_SECRET_FILE'],
    value: secret(),
    secret: true,
  },
  { key: 'auth.disabled', env: ['AUTH_DISABLED'], value: boolean(), default: () => false },
  { key: 'auth.jwksUrl', env: ['AUTH_JWKS_URL'], value: httpUrl('an http(s) URL of a JWKS document') },
  { key: 'auth.issuer', env: ['AUTH_JWT_ISSUER'], value: text('the expected iss claim') },
  { key: 'auth.audience', env: ['AUTH_JWT_AUDIENCE'], value: text('the expected aud claim') },
  {
    key: 'auth.maxTokenLifetimeSeconds',
    env: ['AUTH_MAX_TOKEN_LIFETIME_SECONDS'],
    value: integer(60, 31_536_000, 'a number of seconds'),
    default: () => 86_400,
  },
  {
    key: 'auth.clockToleranceSeconds',
    env: ['AUTH_CLOCK_TOLERANCE_SECONDS'],
    value: integer(0, 300, 'a number of seconds'),
    default: () => 30,
  },
  { key: 'auth.userClaim', env: ['AUTH_USER_CLAIM'], value: text('a claim name'), default: () => 'sub' },
  { key: 'auth.roleClaim', env: ['AUTH_ROLE_CLAIM'], value: text('a claim name'), default: () => 'role' },
  { key: 'auth.groupsClaim', env: ['AUTH_GROUPS_CLAIM'], value: text('a claim name') },
  { key: 'auth.groupRoles', env: ['AUTH_GROUP_ROLES'], value: roleMap(ROLES), default: () => ({}) },
  // A token that says nothing about its role may only read.
  { key: 'auth.defaultRole', env: ['AUTH_DEFAULT_ROLE'], value: oneOf(ROLES), default: () => 'viewer' },
  { key: 'policy.cordonRole', env: ['POLICY_CORDON_ROLE'], value: oneOf(ROLES), default: () => 'operator' },
  {
    key: 'policy.uncordonRole',
    env: ['POLICY_UNCORDON_ROLE'],
    value: oneOf(ROLES),
    default: () => 'operator',
  },
  // Evicting pods is what the system we replace reserved for admins.
  { key: 'policy.drainRole', env: ['POLICY_DRAIN_ROLE'], value: oneOf(ROLES), default: () => 'admin' },
  { key: 'policy.labelRole', env: ['POLICY_LABEL_ROLE'], value: oneOf(ROLES), default: () => 'operator' },
  { key: 'policy.taintRole', env: ['POLICY_TAINT_ROLE'], value: oneOf(ROLES), default: () => 'operator' },
  {
    key: 'policy.protectedPrefixes',
    env: ['POLICY_PROTECTED_PREFIXES'],
    value: prefixList(),
    default: () => ['kubernetes.io/', 'k8s.io/', 'node-role.kubernetes.io/', 'node.kubernetes.io/'],
  },
  {
    key: 'policy.protectedPrefixRole',
    env: ['POLICY_PROTECTED_PREFIX_ROLE'],
    value: oneOf(ROLES),
    default: () => 'admin',
  },
  {
    key: 'policy.seeAllTasksRoles',
    env: ['POLICY_SEE_ALL_TASKS_ROLES'],
    value: roleList(ROLES),
    default: () => ['admin'],
  },
  {
    key: 'audit.retentionDays',
    env: ['AUDIT_RETENTION_DAYS'],
    value: integer(1, 36_500),
    default: () => 365,
  },
  {
    key: 'limits.streamsPerUser',
    env: ['LIMIT_STREAMS_PER_USER'],
    value: integer(1, 1_000_000),
    default: () => 100,
  },
  {
    key: 'limits.streamsTotal',
    env: ['LIMIT_STREAMS_TOTAL'],
    value: integer(1, 10_000_000),
    default: () => 10_000,
  },
  {
    key: 'limits.batchesPerMinute',
    env: ['LIMIT_BATCHES_PER_MINUTE'],
    value: integer(1, 1_000_000),
    default: () => 60,
  },
  {
    key: 'limits.cancelsPerMinute',
    env: ['LIMIT_CANCELS_PER_MINUTE'],
    value: integer(1, 1_000_000),
    default: () => 120,
  },
  {
    key: 'limits.subscribesPerMinute',
    env: ['LIMIT_SUBSCRIBES_PER_MINUTE'],
    value: integer(1, 1_000_000),
    default: () => 600,
  },
  {
    key: 'limits.maxBatchNodes',
    env: ['LIMIT_BATCH_NODES'],
    value: integer(1, 5000),
    default: () => 5000,
  },
  {
    key: 'limits.maxDrainConcurrency',
    env: ['LIMIT_DRAIN_CONCURRENCY'],
    value: integer(1, 1000),
    default: () => 10,
  },
  {
    key: 'limits.maxConcurrency',
    env: ['LIMIT_CONCURRENCY'],
    value: integer(1, 1000),
    default: () => 100,
  },
  {
    key: 'cluster.mode',
    env: ['NODEBATCH_CLUSTER'],
    value: oneOf(CLUSTER_MODES),
    // Always the real thing unless asked: silently simulating node operations
    // would report drains that never happened. Without a kubeconfig or a
    // service account the worker then refuses to start, saying how to fix it.
    default: () => 'kubernetes',
  },
  { key: 'cluster.simNodes', env: ['NODEBATCH_SIM_NODES'], value: integer(1, 100_000), default: () => 50 },
  {
    key: 'cluster.simLatencyMs',
    env: ['NODEBATCH_SIM_LATENCY_MS'],
    value: milliseconds(0, 600_000),
    default: () => 0,
  },
  {
    key: 'cluster.simFailureRate',
    env: ['NODEBATCH_SIM_FAILURE_RATE'],
    value: decimal(0, 1),
    default: () => 0,
  },
  { key: 'cluster.kubeconfig', env: ['KUBECONFIG'], value: text('a path to a kubeconfig file') },
  // Unset: one cluster, named `default`, from the keys above (see clusterTargets).
  { key: 'cluster.clusters', env: ['NODEBATCH_CLUSTERS'], value: clusterList() },
  {
    key: 'worker.jobConcurrency',
    env: ['WORKER_JOB_CONCURRENCY'],
    value: integer(1, 1000),
    default: () => 4,
  },
  {
    key: 'worker.shutdownGraceMs',
    env: ['WORKER_SHUTDOWN_GRACE_MS'],
    value: milliseconds(0, 3_600_000),
    default: () => 30_000,
  },
  // The worker's /healthz and /readyz (Kubernetes probes); no listener unless asked for.
  { key: 'worker.healthPort', env: ['WORKER_HEALTH_PORT'], value: integer(0, 65535) },
  {
    // Finds tasks left running with no job behind them (a flushed queue, a
    // removed job) and ends them; 0 turns the sweep off.
    key: 'worker.orphanSweepIntervalMs',
    env: ['WORKER_ORPHAN_SWEEP_INTERVAL_MS'],
    value: milliseconds(0, 86_400_000),
    default: () => 60_000,
  },
  {
    // How long a run keeps retrying an append while the database is away
    // before it stops and leaves the job to BullMQ's retry.
    key: 'worker.appendRetryBudgetMs',
    env: ['WORKER_APPEND_RETRY_BUDGET_MS'],
    value: milliseconds(0, 3_600_000),
    default: () => 30_000,
  },
  { key: 'queue.name', env: ['QUEUE_NAME'], value: text('a queue name'), default: () => 'nodebatch-batches' },
  {
    key: 'eventStore.retentionDays',
    env: ['EVENT_RETENTION_DAYS'],
    value: integer(1, 3650),
    default: () => 7,
  },
  {
    key: 'log.level',
    env: ['LOG_LEVEL'],
    fileAliases: ['logging.level'],
    value: oneOf(LOG_LEVELS),
    default: () => 'info',
  },
];

/**
 * Variables read besides the per-key ones. KUBERNETES_SERVICE_HOST is set by
 * Kubernetes in every pod: inside one, a database host left at its default
 * earns a warning instead of a quiet dial to localhost.
 */
const GLOBAL_ENV_VARS = [
  'CONFIG_FILE',
  'DATABASE_URL',
  'DB_LISTEN_URL',
  'REDIS_URL',
  'KUBERNETES_SERVICE_HOST',
] as const;

/**
 * Every environment variable nodebatch reads. Deployment tests check the
 * manifests against this list, and the look-alike warning uses it.
 */
export const ACCEPTED_ENV_VARS: readonly string[] = Object.freeze([
  ...GLOBAL_ENV_VARS,
  ...CONFIG_FIELDS.flatMap((field) => field.env),
]);

/** Keys whose value is a secret: printed as `set` / `not set` only. */
export const SECRET_KEYS: readonly string[] = CONFIG_FIELDS.filter((field) => field.secret).map(
  (field) => field.key,
);

/** The SSL modes of libpq's `sslmode`; see pgPoolConfig for how node-postgres honours each. */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const NOTIFY_TYPES = ['postgres', 'redis', 'polling'] as const;
export type NotifyType = (typeof NOTIFY_TYPES)[number];

export const CLUSTER_MODES = ['kubernetes', 'simulated'] as const;
export type ClusterMode = (typeof CLUSTER_MODES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DatabaseConfig {
  host: string;
  port: number;
  database: string;
  username: string;
  password?: string;
  sslMode: SslMode;
  poolMax: number;
  /**
   * Where the LISTEN connection goes when it must bypass a pooler
   * (DB_LISTEN_URL, DB_LISTEN_HOST, DB_LISTEN_PORT); each part left unset is
   * the pool's. See listenerDatabase().
   */
  listenHost?: string;
  listenPort?: number;
  listenDatabase?: string;
  listenUsername?: string;
  listenPassword?: string;
}

/** One node of a Redis Cluster, as REDIS_CLUSTER_NODES lists it. */
export interface RedisClusterNode {
  host: string;
  port: number;
}

export interface RedisConfig {
  /**
   * Seed nodes of a Redis Cluster (REDIS_CLUSTER_NODES). When set, every
   * Redis client is ioredis' Cluster client and host/port are not used.
   */
  clusterNodes?: RedisClusterNode[];
  host: string;
  port: number;
  /** ACL user name (Redis 6+); only from REDIS_URL or REDIS_USERNAME. */
  username?: string;
  password?: string;
  db: number;
  /** true for `rediss://` URLs or REDIS_TLS=true. */
  tls?: boolean;
}

export interface ProgressConfig {
  notifyType: NotifyType;
  pollIntervalMs: number;
  fallbackAfterMs: number;
  /**
   * PROGRESS_COMBINED_HINTS: a transaction that appends to several tasks
   * announces them in one NOTIFY or PUBLISH (as many as fit) instead of one
   * per task. Gateways before this setting existed cannot read such hints,
   * so it is turned on once every process is upgraded. Default false.
   */
  combinedHints: boolean;
  /**
   * Shared secret of every worker and gateway (PROGRESS_HINT_KEY, ≥ 32 bytes):
   * hints carry a MAC of their inline events, and a verified event is
   * delivered without reading the log. Unset: every inline event from
   * another process is checked against the log.
   */
  hintKey?: string;
}

/** Roles a token may carry, least to most powerful. A token's `user` is read as `operator`. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type RoleName = (typeof ROLES)[number];

export interface GatewayConfig {
  port: number;
  allowedOrigins: string[];
  /** Port of the internal listener serving /metrics and the detailed /readyz; unset: both on `port`. */
  metricsPort?: number;
}

export interface AuthConfig {
  jwtSecret?: string;
  disabled: boolean;
  /** OIDC: verify RS256/ES256 tokens with the keys published here. */
  jwksUrl?: string;
  /** Required `iss` when set. */
  issuer?: string;
  /** Required `aud` when set. */
  audience?: string;
  /** Longest accepted token lifetime (exp - iat, or exp - now without iat), seconds. */
  maxTokenLifetimeSeconds: number;
  /** Allowed clock difference with the issuer for exp/nbf/iat, seconds. */
  clockToleranceSeconds: number;
  /** Claim naming the user. */
  userClaim: string;
  /** Claim holding the role. */
  roleClaim: string;
  /** Claim holding the user's groups (a list), mapped to roles by `groupRoles`. */
  groupsClaim?: string;
  groupRoles: Record<string, RoleName>;
  /** Role of a token that names none (and no mapped group). */
  defaultRole: RoleName;
}

/** Who may do what; see the gateway's policy module. */
export interface PolicyConfig {
  cordonRole: RoleName;
  uncordonRole: RoleName;
  drainRole: RoleName;
  labelRole: RoleName;
  taintRole: RoleName;
  /** Label and taint keys under these prefixes need `protectedPrefixRole`. */
  protectedPrefixes: string[];
  protectedPrefixRole: RoleName;
  /** Roles that see (and may follow) every user's tasks; others see their own. */
  seeAllTasksRoles: RoleName[];
}

export interface AuditConfig {
  /** Audit rows older than this are deleted. */
  retentionDays: number;
}

export interface LimitsConfig {
  /** Open SSE streams and WebSocket connections per user, per gateway. */
  streamsPerUser: number;
  /** Open SSE streams and WebSocket connections per gateway. */
  streamsTotal: number;
  /** Batch submissions per user per minute. */
  batchesPerMinute: number;
  /** Cancels per user per minute. */
  cancelsPerMinute: number;
  /** WebSocket subscribe messages per user per minute. */
  subscribesPerMinute: number;
  /** Most nodes one batch may name or select (a larger batch is a 400 naming the limit). */
  maxBatchNodes: number;
  /** Largest `concurrency` a drain batch may ask for (drains move workloads: keep it low). */
  maxDrainConcurrency: number;
  /** Largest `concurrency` a batch of any other action may ask for. */
  maxConcurrency: number;
}

export interface ClusterConfig {
  mode: ClusterMode;
  simNodes: number;
  simLatencyMs: number;
  simFailureRate: number;
  kubeconfig?: string;
  /**
   * Named clusters (NODEBATCH_CLUSTERS, file `cluster.clusters`); unset: one
   * cluster named `default` from the keys above. See clusterTargets().
   */
  clusters?: NamedClusterConfig[];
}

/** One entry of `cluster.clusters`. */
export interface NamedClusterConfig {
  /** A DNS label; batches, the inventory and tasks name the cluster by it. */
  name: string;
  /** Default 'kubernetes'; 'simulated' only when set. */
  mode: ClusterMode;
  /** Its kubeconfig file; default: `cluster.kubeconfig` (KUBECONFIG), ~/.kube/config, the service account. */
  kubeconfig?: string;
  /** The kubeconfig context; default: the file's current context. */
  context?: string;
  /** A batch naming no cluster runs here (at most one; the only cluster is the default anyway). */
  default: boolean;
}

export interface WorkerConfig {
  jobConcurrency: number;
  shutdownGraceMs: number;
  /** Port of the worker's /healthz and /readyz (WORKER_HEALTH_PORT); unset: no health listener. */
  healthPort?: number;
  /** Time between two orphan sweeps (tasks running with no live job are ended); 0: no sweep. */
  orphanSweepIntervalMs: number;
  /** How long a run retries an append during a database outage before it stops (the job is retried). */
  appendRetryBudgetMs: number;
}

export interface QueueConfig {
  name: string;
}

export interface EventStoreConfig {
  retentionDays: number;
}

export interface LogConfig {
  level: LogLevel;
}

export interface NodebatchConfig {
  database: DatabaseConfig;
  /** null when Redis is not configured (no REDIS_URL, REDIS_HOST or `redis` section in the file). */
  redis: RedisConfig | null;
  progress: ProgressConfig;
  gateway: GatewayConfig;
  auth: AuthConfig;
  policy: PolicyConfig;
  audit: AuditConfig;
  limits: LimitsConfig;
  cluster: ClusterConfig;
  worker: WorkerConfig;
  queue: QueueConfig;
  eventStore: EventStoreConfig;
  log: LogConfig;
}

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

export interface RedisConfig {
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
}

export interface GatewayConfig {
  port: number;
  allowedOrigins: string[];
}

export interface AuthConfig {
  jwtSecret?: string;
  disabled: boolean;
}

export interface ClusterConfig {
  mode: ClusterMode;
  simNodes: number;
  simLatencyMs: number;
  simFailureRate: number;
  kubeconfig?: string;
}

export interface WorkerConfig {
  jobConcurrency: number;
  shutdownGraceMs: number;
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
  cluster: ClusterConfig;
  worker: WorkerConfig;
  queue: QueueConfig;
  eventStore: EventStoreConfig;
  log: LogConfig;
}

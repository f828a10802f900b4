export { clusterTargets, SINGLE_CLUSTER_NAME, type ClusterTarget } from './cluster-list.js';
export { ConfigError, type ConfigIssue } from './config-error.js';
export {
  ACCEPTED_ENV_VARS,
  CONFIG_FIELDS,
  SECRET_KEYS,
  type ConfigField,
  type Env,
} from './config-fields.js';
export { configEntries, type ConfigEntry } from './config-entries.js';
export { logConfigWarnings, type ConfigWarning, type ConfigWarningCode } from './config-warning.js';
export { maskUrlPassword, parseDatabaseUrl, parseRedisUrl } from './connection-urls.js';
export { createLogger, REDACTED_PATHS, type CreateLoggerOptions } from './create-logger.js';
export {
  describeDatabase,
  hasSeparateListener,
  listenerDatabase,
  pgPoolConfig,
  type DatabaseDescription,
} from './database.js';
export { isInKubernetes } from './kubernetes.js';
export { loadConfig, type LoadConfigOptions, type LoadedConfig } from './load-config.js';
export * from './nodebatch-config.js';
export {
  createRedisClient,
  describeRedis,
  redisClusterNodes,
  redisMode,
  redisOptions,
  type RedisClusterClientOptions,
  type RedisDescription,
  type RedisMode,
} from './redis.js';

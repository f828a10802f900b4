export * from './shared-servers.js';
export { freePort, isPortFree } from './free-port.js';
export { sweepLeftovers } from './cleanup.js';
export {
  findPostgresBinDir,
  findRedisCli,
  findRedisServer,
  MissingServerBinaryError,
  whichSync,
} from './server-binaries.js';
export { ServerStartError } from './server-process.js';
export type { PrivateServer } from './private-server.js';
export { unprivilegedServerUser, type ServerUser } from './server-user.js';
export {
  initPostgresCluster,
  POSTGRES_READY,
  postgresArgs,
  startPostgres,
  type InitPostgresClusterOptions,
  type PostgresServer,
  type StartPostgresOptions,
} from './postgres-server.js';
export {
  REDIS_READY,
  redisArgs,
  startRedis,
  type RedisServer,
  type StartRedisOptions,
} from './redis-server.js';
export {
  findPgBouncer,
  startPgBouncer,
  type PgBouncerServer,
  type StartPgBouncerOptions,
} from './pgbouncer-server.js';
export { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
export { startRedisCluster, type RedisCluster, type StartRedisClusterOptions } from './redis-cluster.js';

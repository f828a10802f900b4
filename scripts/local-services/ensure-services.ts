import { maskUrlPassword } from '@nodebatch/config';
import {
  findPostgresBinDir,
  findRedisServer,
  MissingServerBinaryError,
  unprivilegedServerUser,
} from '@nodebatch/testkit';
import { probePostgres, probeRedis } from './probe.js';
import {
  ensureProjectPostgres,
  ensureProjectRedis,
  postgresUrl,
  readState,
  redisUrl,
} from './project-services.js';
import { aptInstaller, type PackageInstaller } from './package-installer.js';

/** How a server was found: configured, already listening, or the project's own (reused or started now). */
type ServiceOrigin = 'configured' | 'listening' | 'project' | 'project-started';

interface EnsuredServices {
  databaseUrl: string;
  redisUrl: string;
  postgres: ServiceOrigin;
  redis: ServiceOrigin;
}

interface EnsureServicesOptions {
  /** The checkout; project-owned servers live under its .data/. */
  projectDir: string;
  /** Reads NODEBATCH_TEST_DATABASE_URL and NODEBATCH_TEST_REDIS_URL. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where servers are looked for first and project-owned ones go when free. Default 5432 and 6379. */
  defaultPorts?: { postgres: number; redis: number };
  /** Progress lines (to stderr in the script). */
  log?: (line: string) => void;
  /** Installs missing server packages. Default: apt-get when root on Debian, else none. */
  installer?: PackageInstaller;
  /** Finds the installed programs. Default: testkit's findPostgresBinDir / findRedisServer. */
  findPostgresBinDir?: () => string;
  findRedisServer?: () => string;
}

/** Neither a usable server nor a way to start one; the message says what to install or set. */
export class ServicesUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServicesUnavailableError';
  }
}

const INSTALL_HINT =
  'Install the PostgreSQL server and Redis, e.g. `sudo apt-get install postgresql redis-server` (Debian/Ubuntu), ' +
  '`sudo dnf install postgresql-server redis` (Fedora) or `brew install postgresql redis` (macOS); ' +
  'or point NODEBATCH_TEST_DATABASE_URL and NODEBATCH_TEST_REDIS_URL at servers of yours (PostgreSQL user with CREATEDB).';

/**
 * Makes PostgreSQL and Redis reachable for the tests, in this order for each:
 * the configured URL; a usable server on the default port; the project's own
 * instance (reused, or started from the locally installed programs); the
 * packages installed first when that is possible. A server this did not
 * start is only ever connected to, never stopped or reconfigured.
 */
export async function ensureServices(options: EnsureServicesOptions): Promise<EnsuredServices> {
  const env = options.env ?? process.env;
  const defaults = options.defaultPorts ?? { postgres: 5432, redis: 6379 };
  const log = options.log ?? (() => undefined);
  const installer = options.installer ?? aptInstaller();
  const findPg = options.findPostgresBinDir ?? findPostgresBinDir;
  const findRedis = options.findRedisServer ?? findRedisServer;

  const configuredDb = env.NODEBATCH_TEST_DATABASE_URL?.trim() || undefined;
  const configuredRedis = env.NODEBATCH_TEST_REDIS_URL?.trim() || undefined;
  const problems: string[] = [];

  // 1. Configured: used as given; never replaced by something else, since
  //    the user asked for that server.
  if (configuredDb) {
    const probe = await probePostgres(configuredDb);
    if (!probe.ok)
      problems.push(
        `NODEBATCH_TEST_DATABASE_URL (${maskUrlPassword(configuredDb)}) is not usable: ${probe.reason}`,
      );
  }
  if (configuredRedis) {
    const probe = await probeRedis(configuredRedis);
    if (!probe.ok)
      problems.push(
        `NODEBATCH_TEST_REDIS_URL (${maskUrlPassword(configuredRedis)}) is not usable: ${probe.reason}`,
      );
  }
  if (problems.length > 0) throw new ServicesUnavailableError(problems.join('\n'));

  // 2. Already listening on the default ports and usable as user postgres without a password.
  let database: { url: string; origin: ServiceOrigin } | undefined = configuredDb
    ? { url: configuredDb, origin: 'configured' }
    : undefined;
  let redis: { url: string; origin: ServiceOrigin } | undefined = configuredRedis
    ? { url: configuredRedis, origin: 'configured' }
    : undefined;
  // A server on a default port may be the project's own from an earlier run.
  const owned = readState(options.projectDir);
  if (!database) {
    const url = postgresUrl(defaults.postgres);
    const probe = await probePostgres(url);
    if (probe.ok)
      database = { url, origin: owned.postgres?.port === defaults.postgres ? 'project' : 'listening' };
    else if (probe.listening)
      log(
        `[services] a server on 127.0.0.1:${defaults.postgres} is not usable (${probe.reason}); leaving it alone`,
      );
  }
  if (!redis) {
    const url = redisUrl(defaults.redis);
    const probe = await probeRedis(url);
    if (probe.ok) redis = { url, origin: owned.redis?.port === defaults.redis ? 'project' : 'listening' };
    else if (probe.listening)
      log(
        `[services] a server on 127.0.0.1:${defaults.redis} is not usable (${probe.reason}); leaving it alone`,
      );
  }
  if (database && redis) return result(database, redis);

  // 3. The project's own instances, from the installed programs (installed first when we may).
  const missing: Array<{ name: string; package: string; error: MissingServerBinaryError }> = [];
  const locate = <T>(find: () => T, name: string, pkg: string): T | undefined => {
    try {
      return find();
    } catch (error) {
      if (!(error instanceof MissingServerBinaryError)) throw error;
      missing.push({ name, package: pkg, error });
      return undefined;
    }
  };
  let binDir = database ? undefined : locate(findPg, 'PostgreSQL', 'postgresql');
  let redisServer = redis ? undefined : locate(findRedis, 'Redis', 'redis-server');
  if (missing.length > 0) {
    const packages = missing.map((entry) => entry.package);
    if (!installer.available) {
      throw new ServicesUnavailableError(
        `${missing.map((entry) => entry.name).join(' and ')} not reachable on 127.0.0.1 and not installed (${missing
          .map((entry) => entry.error.message)
          .join('; ')}). ${INSTALL_HINT}`,
      );
    }
    log(`[services] installing ${packages.join(' ')} with ${installer.name}`);
    await installer.install(packages);
    missing.length = 0;
    binDir = database ? undefined : locate(findPg, 'PostgreSQL', 'postgresql');
    redisServer = redis ? undefined : locate(findRedis, 'Redis', 'redis-server');
    if (missing.length > 0) {
      throw new ServicesUnavailableError(
        `${installer.name} installed ${packages.join(' ')} but ${missing.map((m) => m.error.message).join('; ')}`,
      );
    }
  }
  if (!database && binDir) {
    const user = unprivilegedServerUser();
    const started = await ensureProjectPostgres(
      options.projectDir,
      { binDir, ...(user ? { user } : {}) },
      defaults.postgres,
      log,
    );
    database = { url: started.url, origin: started.started ? 'project-started' : 'project' };
  }
  if (!redis && redisServer) {
    const started = await ensureProjectRedis(options.projectDir, redisServer, defaults.redis, log);
    redis = { url: started.url, origin: started.started ? 'project-started' : 'project' };
  }
  if (!database || !redis)
    throw new ServicesUnavailableError(`could not provide the test servers. ${INSTALL_HINT}`);
  return result(database, redis);
}

function result(
  database: { url: string; origin: ServiceOrigin },
  redis: { url: string; origin: ServiceOrigin },
): EnsuredServices {
  return { databaseUrl: database.url, redisUrl: redis.url, postgres: database.origin, redis: redis.origin };
}

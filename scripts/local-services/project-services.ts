import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  initPostgresCluster,
  isPortFree,
  postgresArgs,
  redisArgs,
  type ServerUser,
} from '@nodebatch/testkit';
import { probePostgres, probeRedis } from './probe.js';

/**
 * Servers this project started for its tests, recorded in
 * `.data/test-services.json` so that the next run reuses them and `--stop`
 * stops exactly these and nothing else.
 */
interface ProjectServicesState {
  postgres?: { dataDir: string; port: number };
  redis?: { dir: string; port: number };
}

function stateFile(projectDir: string): string {
  return join(projectDir, '.data', 'test-services.json');
}

export function readState(projectDir: string): ProjectServicesState {
  try {
    return JSON.parse(readFileSync(stateFile(projectDir), 'utf8')) as ProjectServicesState;
  } catch {
    return {};
  }
}

function writeState(projectDir: string, state: ProjectServicesState): void {
  mkdirSync(join(projectDir, '.data'), { recursive: true });
  writeFileSync(stateFile(projectDir), `${JSON.stringify(state, null, 2)}\n`);
}

export function postgresUrl(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

export function redisUrl(port: number): string {
  return `redis://127.0.0.1:${port}`;
}

/** The preferred port when nothing listens there, else one the system picks. */
async function choosePort(preferred: number): Promise<number> {
  return (await isPortFree(preferred)) ? preferred : freePort();
}

/** Whether `user` can enter `dir` (every ancestor must be searchable by it). */
function reachableBy(user: ServerUser, dir: string): boolean {
  return (
    spawnSync('/bin/sh', ['-c', 'cd "$1"', 'sh', dir], { uid: user.uid, gid: user.gid, stdio: 'ignore' })
      .status === 0
  );
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

interface PostgresBinaries {
  binDir: string;
  /** Set when we are root: PostgreSQL runs as this user. */
  user?: ServerUser;
}

/**
 * The project-owned PostgreSQL: reused when it answers, started again on its
 * recorded port (and data) when it does not, created under
 * .data/test-postgres otherwise. When we are root the cluster belongs to an
 * unprivileged user; if that user cannot reach the checkout (a home
 * directory with mode 0700), the cluster lives in the temp dir instead.
 */
export async function ensureProjectPostgres(
  projectDir: string,
  binaries: PostgresBinaries,
  preferredPort: number,
  log: (line: string) => void,
): Promise<{ url: string; started: boolean }> {
  const state = readState(projectDir);
  if (state.postgres && (await probePostgres(postgresUrl(state.postgres.port))).ok) {
    return { url: postgresUrl(state.postgres.port), started: false };
  }
  let dataDir = state.postgres?.dataDir;
  if (!dataDir || !existsSync(join(dataDir, 'PG_VERSION'))) {
    const baseDir = join(projectDir, '.data', 'test-postgres');
    mkdirSync(baseDir, { recursive: true });
    let home = baseDir;
    if (binaries.user && !reachableBy(binaries.user, baseDir)) {
      rmSync(baseDir, { recursive: true, force: true });
      const digest = createHash('sha256').update(realpathSync(projectDir)).digest('hex').slice(0, 12);
      home = join(tmpdir(), `nodebatch-test-postgres-${digest}`);
      mkdirSync(home, { recursive: true });
      log(
        `[services] ${baseDir} is not reachable by user ${binaries.user.name}; the cluster lives in ${home}`,
      );
    }
    if (binaries.user) chownSync(home, binaries.user.uid, binaries.user.gid);
    dataDir = join(home, 'data');
    rmSync(dataDir, { recursive: true, force: true });
    log(`[services] creating a PostgreSQL cluster in ${dataDir}`);
    await initPostgresCluster({
      binDir: binaries.binDir,
      dataDir,
      ...(binaries.user ? { user: binaries.user } : {}),
    });
  }
  const recorded = state.postgres?.port;
  const port =
    recorded !== undefined && (await isPortFree(recorded)) ? recorded : await choosePort(preferredPort);
  const home = join(dataDir, '..');
  const args = postgresArgs({ dataDir, port, socketDir: home }).map(shellQuote).join(' ');
  log(`[services] starting the project's PostgreSQL on 127.0.0.1:${port}`);
  try {
    // pg_ctl -w detaches the server and waits until it accepts connections (or fails).
    execFileSync(
      join(binaries.binDir, 'pg_ctl'),
      ['start', '-w', '-t', '120', '-D', dataDir, '-l', join(home, 'postgres.log'), '-o', args],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        ...(binaries.user ? { uid: binaries.user.uid, gid: binaries.user.gid } : {}),
      },
    );
  } catch (error) {
    let tail = '';
    try {
      tail = readFileSync(join(home, 'postgres.log'), 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      // no log written
    }
    throw new Error(
      `pg_ctl could not start PostgreSQL in ${dataDir} on port ${port}: ${(error as Error).message}\n${tail}`,
      { cause: error },
    );
  }
  writeState(projectDir, { ...readState(projectDir), postgres: { dataDir, port } });
  return { url: postgresUrl(port), started: true };
}

/** The project-owned redis-server (no persistence), reused when it answers. */
export async function ensureProjectRedis(
  projectDir: string,
  redisServer: string,
  preferredPort: number,
  log: (line: string) => void,
): Promise<{ url: string; started: boolean }> {
  const state = readState(projectDir);
  if (state.redis && (await probeRedis(redisUrl(state.redis.port))).ok) {
    return { url: redisUrl(state.redis.port), started: false };
  }
  const dir = state.redis?.dir ?? join(projectDir, '.data', 'test-redis');
  mkdirSync(dir, { recursive: true });
  const recorded = state.redis?.port;
  const port =
    recorded !== undefined && (await isPortFree(recorded)) ? recorded : await choosePort(preferredPort);
  log(`[services] starting the project's redis-server on 127.0.0.1:${port}`);
  execFileSync(
    redisServer,
    [
      ...redisArgs({
        port,
        dir,
        extra: [
          '--daemonize',
          'yes',
          '--pidfile',
          join(dir, 'redis.pid'),
          '--logfile',
          join(dir, 'redis.log'),
        ],
      }),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  // --daemonize returns once the child is forked; wait until it answers.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const probe = await probeRedis(redisUrl(port), 2000);
    if (probe.ok) break;
    if (Date.now() > deadline)
      throw new Error(`redis-server in ${dir} did not answer on port ${port}: ${probe.reason}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  writeState(projectDir, { ...readState(projectDir), redis: { dir, port } });
  return { url: redisUrl(port), started: true };
}

/** The pid in `pidFile` when that process still runs from `dir` (pids are reused). */
function ownedPid(pidFile: string, dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return realpathSync(`/proc/${pid}/cwd`).startsWith(realpathSync(dir)) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stops the servers recorded in the state file, and only those: each is
 * identified by the pid file in its own directory. Servers found listening
 * on the default ports were never ours and are never stopped.
 */
export async function stopProjectServices(
  projectDir: string,
  binDir?: string,
  user?: ServerUser,
): Promise<void> {
  const state = readState(projectDir);
  if (
    state.postgres &&
    ownedPid(join(state.postgres.dataDir, 'postmaster.pid'), state.postgres.dataDir) !== undefined
  ) {
    if (binDir) {
      execFileSync(join(binDir, 'pg_ctl'), ['stop', '-w', '-m', 'fast', '-D', state.postgres.dataDir], {
        stdio: 'ignore',
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      });
    } else {
      const pid = ownedPid(join(state.postgres.dataDir, 'postmaster.pid'), state.postgres.dataDir);
      if (pid) process.kill(pid, 'SIGINT');
    }
  }
  if (state.redis) {
    const pid = ownedPid(join(state.redis.dir, 'redis.pid'), state.redis.dir);
    if (pid !== undefined) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && (await probeRedis(redisUrl(state.redis.port), 1000)).ok) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

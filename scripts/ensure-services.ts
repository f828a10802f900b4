/**
 * Makes sure PostgreSQL and Redis are reachable before the tests start, and
 * prints where they are. `--json` prints, as the last line of stdout,
 * `{"databaseUrl": "...", "redisUrl": "..."}` for scripts/run-tests.mjs.
 * `--stop` stops the servers this project started (never any other).
 * Progress and errors go to stderr.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPostgresBinDir, unprivilegedServerUser } from '@nodebatch/testkit';
import { ensureServices, ServicesUnavailableError } from './local-services/ensure-services.js';
import { stopProjectServices } from './local-services/project-services.js';

const projectDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line: string) => process.stderr.write(`${line}\n`);

if (process.argv.includes('--stop')) {
  let binDir: string | undefined;
  try {
    binDir = findPostgresBinDir();
  } catch {
    binDir = undefined;
  }
  await stopProjectServices(projectDir, binDir, unprivilegedServerUser());
  log('[services] stopped the project-owned test servers (if any were running)');
  process.exit(0);
}

try {
  const services = await ensureServices({ projectDir, log });
  log(
    `[services] PostgreSQL: ${services.databaseUrl} (${services.postgres}); Redis: ${services.redisUrl} (${services.redis})`,
  );
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ databaseUrl: services.databaseUrl, redisUrl: services.redisUrl }));
  } else {
    console.log(`PostgreSQL: ${services.databaseUrl}\nRedis: ${services.redisUrl}`);
  }
} catch (error) {
  if (!(error instanceof ServicesUnavailableError)) throw error;
  log(`[services] ${error.message}`);
  process.exit(1);
}

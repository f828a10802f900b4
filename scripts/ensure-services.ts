/**
 * Makes sure PostgreSQL and Redis are reachable before the tests start, and
 * prints where they are. `--json` prints one JSON line
 * `{"databaseUrl": "...", "redisUrl": "..."}` for scripts/run-tests.mjs.
 */
import { Socket } from 'node:net';

const databaseUrl = process.env.NODEBATCH_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.NODEBATCH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port || defaultPort), hostname, () => done(true));
  });
}

const missing: string[] = [];
if (!(await reachable(databaseUrl, 5432))) missing.push(`PostgreSQL at ${new URL(databaseUrl).host}`);
if (!(await reachable(redisUrl, 6379))) missing.push(`Redis at ${new URL(redisUrl).host}`);
if (missing.length > 0) {
  console.error(`[services] not reachable: ${missing.join(', ')}`);
  process.exit(1);
}
if (process.argv.includes('--json')) console.log(JSON.stringify({ databaseUrl, redisUrl }));
else console.log(`PostgreSQL: ${new URL(databaseUrl).host}\nRedis: ${new URL(redisUrl).host}`);

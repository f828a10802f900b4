import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { processRunning, SERVER_DIR_PREFIX, sweepLeftovers } from './cleanup.js';
import { freePort, isPortFree } from './free-port.js';
import { redisArgs } from './redis-server.js';
import { findRedisServer } from './server-binaries.js';

const fixture = join(dirname(fileURLToPath(import.meta.url)), '../test/fixtures/abandon-server.ts');

interface Abandoned {
  pid: number;
  port: number;
  dir: string;
}

/** Starts the fixture; resolves with the server it started and a promise of its own exit. */
function abandon(kind: 'postgres' | 'redis', mode: 'exit' | 'hang') {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', fixture, kind, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = new Promise<Abandoned>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line) as Abandoned));
    child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before starting its server`)));
  });
  return { child, started, exited };
}

describe('cleanup of private servers', () => {
  it.each(['postgres', 'redis'] as const)(
    'kills %s and removes its dir when the test process exits without destroy()',
    async (kind) => {
      const { started, exited } = abandon(kind, 'exit');
      const server = await started;
      await exited;
      await expect.poll(() => processRunning(server.pid), { timeout: 10_000 }).toBe(false);
      expect(existsSync(server.dir)).toBe(false);
      expect(await isPortFree(server.port)).toBe(true);
    },
  );

  it.each(['postgres', 'redis'] as const)(
    'kills %s and removes its dir when the test process is killed with SIGKILL',
    async (kind) => {
      const { child, started, exited } = abandon(kind, 'hang');
      const server = await started;
      child.kill('SIGKILL');
      await exited;
      // Nothing could run in the killed process; its watchdog cleans up.
      await expect.poll(() => processRunning(server.pid), { timeout: 20_000 }).toBe(false);
      await expect.poll(() => existsSync(server.dir), { timeout: 10_000 }).toBe(false);
    },
  );

  it('sweeps a server whose test process and watchdog are both gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), `${SERVER_DIR_PREFIX}redis-`));
    const port = await freePort();
    const server = spawn(findRedisServer(), redisArgs({ port, dir }), { detached: true, stdio: 'ignore' });
    const serverExited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
    // A pid that certainly belonged to a process that has ended.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.once('exit', resolve));
    writeFileSync(join(dir, 'owner.json'), JSON.stringify({ ownerPid: gone.pid, serverPid: server.pid }));
    await expect.poll(async () => !(await isPortFree(port)), { timeout: 20_000 }).toBe(true);

    sweepLeftovers();
    await serverExited;
    expect(existsSync(dir)).toBe(false);
  });
});

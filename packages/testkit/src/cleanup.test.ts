import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sweepLeftovers } from './cleanup.js';
import { isPortFree } from './free-port.js';

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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('cleanup of private servers', () => {
  it.each(['postgres', 'redis'] as const)(
    'kills %s and removes its dir when the test process exits without destroy()',
    async (kind) => {
      const { started, exited } = abandon(kind, 'exit');
      const server = await started;
      await exited;
      await expect.poll(() => alive(server.pid), { timeout: 10_000 }).toBe(false);
      expect(existsSync(server.dir)).toBe(false);
      expect(await isPortFree(server.port)).toBe(true);
    },
  );

  it('sweeps a server left by a test process that was killed with SIGKILL', async () => {
    const { child, started, exited } = abandon('redis', 'hang');
    const server = await started;
    child.kill('SIGKILL');
    await exited;
    // Nothing could run in the killed process: the server is still there.
    expect(alive(server.pid)).toBe(true);
    expect(existsSync(server.dir)).toBe(true);
    sweepLeftovers();
    await expect.poll(() => alive(server.pid), { timeout: 10_000 }).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
  });
});

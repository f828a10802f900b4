import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repoRoot = join(import.meta.dirname, '..', '..');
const cli = join(repoRoot, 'services', 'cli', 'dist', 'main.js');

/** Every variable that would point the demo at a configured database or Redis. */
const CONFIG_VARS = /^(DB_|DATABASE_|REDIS_|PROGRESS_|CONFIG_FILE$|NODEBATCH_|PG)/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions the path (the embedded server is started with its data dir). */
function processesMentioning(path: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('nodebatch demo', () => {
  // Readable by the unprivileged user the embedded PostgreSQL runs as when the tests run as root.
  const dataDir = mkdtempSync(join(tmpdir(), 'nodebatch-demo-'));
  chmodSync(dataDir, 0o755);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('runs end to end on the embedded default and leaves no process behind', async () => {
    expect(existsSync(cli), `${cli} is built by the test command before the tests`).toBe(true);
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !CONFIG_VARS.test(key)));
    const child = spawn(process.execPath, [cli, 'demo', '--data-dir', dataDir, '--nodes', '40'], {
      cwd: dataDir,
      env: { ...env, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));

    expect(output, output).toContain('database: none configured, starting an embedded PostgreSQL');
    expect(output).toContain('queue: BullMQ on PostgreSQL · transport: PostgreSQL LISTEN/NOTIFY');
    expect(output).toMatch(/submitted drain of 40 nodes to gateway-a/);
    expect(output).toMatch(/watching it on gateway-b/);
    expect(output).toMatch(
      /summary: task completed · 40 succeeded · 0 failed · \d+ events, seq 1\.\.\d+ each exactly once/,
    );
    expect(output).toContain('gateway-b notifier: postgres');
    expect(output).toMatch(/the live page: http:\/\/127\.0\.0\.1:\d+\//);
    expect(output).toContain('stopped every process');
    expect(code).toBe(0);

    const pids = (/pids ([\d ]+);/.exec(output)?.[1] ?? '').split(' ').map(Number);
    expect(pids).toHaveLength(4);
    expect(pids.filter(alive)).toEqual([]);
    expect(processesMentioning(join(dataDir, 'embedded-postgres'))).toEqual([]);
    expect(existsSync(join(dataDir, 'embedded-postgres', 'data', 'postmaster.pid'))).toBe(false);
  }, 300_000);
});

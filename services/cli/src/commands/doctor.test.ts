import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase, sharedRedisUrl, uniqueName, type TestDatabase } from '@nodebatch/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const main = join(import.meta.dirname, '..', 'main.ts');

/** Runs `nodebatch doctor` as a user would, with only the given environment. */
async function doctor(env: Record<string, string>, args: string[] = []) {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', main, 'doctor', '--timeout', '5000', ...args],
      {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'silent', ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('nodebatch doctor', () => {
  let db: TestDatabase;
  let dbEnv: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: 'doctor' });
    dbEnv = { DATABASE_URL: db.url, QUEUE_NAME: uniqueName('doctor') };
  });
  afterAll(() => db.drop());

  it('passes every check against the test servers with Redis configured', async () => {
    const result = await doctor({ ...dbEnv, REDIS_URL: sharedRedisUrl() });
    expect(result.stdout).toMatch(/✅ database .*PostgreSQL \d+/);
    for (const check of ['migrations', 'listener', 'redis', 'queue', 'notifier']) {
      expect(result.stdout).toMatch(new RegExp(`✅ ${check} `));
    }
    expect(result.stdout).toContain('round trip through postgres');
    expect(result.stdout).toContain('all checks passed');
    expect(result.code).toBe(0);
  });

  it('reports machine-readable checks with --json, on the PostgreSQL queue without Redis', async () => {
    const result = await doctor({ ...dbEnv, PROGRESS_NOTIFY_TYPE: 'polling' }, ['--json']);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      checks: { name: string; status: string; detail: string }[];
      config: Record<string, { value: unknown; source: string }>;
    };
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => [c.name, c.status])).toEqual([
      ['database', 'ok'],
      ['migrations', 'ok'],
      ['listener', 'ok'],
      ['redis', 'skipped'],
      ['queue', 'ok'],
      ['notifier', 'ok'],
    ]);
    expect(report.checks.find((c) => c.name === 'queue')?.detail).toContain('"backend":"postgres"');
    expect(report.config['progress.notifyType']).toEqual({
      value: 'polling',
      source: 'env:PROGRESS_NOTIFY_TYPE',
    });
    expect(result.code).toBe(0);
  });

  it('fails with exit code 1 on a wrong host, naming the host and never the password', async () => {
    const password = 'doctor-S3cret-value';
    const result = await doctor({ DB_HOST: 'db.nodebatch-doctor.invalid', DB_PASSWORD: password });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/❌ database .*db\.nodebatch-doctor\.invalid/);
    expect(result.stdout).toContain('DB_HOST');
    expect(result.stdout).toMatch(/database\.password\s+set/);
    expect(result.stdout + result.stderr).not.toContain(password);
    expect(result.stdout).toContain('some checks did not pass');
  });

  it('names the port and the server to start when the connection is refused', async () => {
    const password = 'another-S3cret';
    const result = await doctor({ DB_HOST: '127.0.0.1', DB_PORT: '1', DB_PASSWORD: password }, ['--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as {
      checks: { name: string; status: string; detail: string }[];
    };
    const database = report.checks.find((c) => c.name === 'database')!;
    expect(database.status).toBe('fail');
    expect(database.detail).toContain('127.0.0.1:1');
    expect(report.checks.filter((c) => c.status === 'skipped').map((c) => c.name)).toContain('notifier');
    expect(result.stdout).not.toContain(password);
  });
});

import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAuditLog, runMigrations } from '@nodebatch/event-store';
import { createTestDatabase, type TestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../../..');
const mainTs = join(repoRoot, 'services/cli/src/main.ts');

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'cli_audit' });
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  try {
    await runMigrations(pool);
    const audit = createAuditLog({ pool });
    await audit.record({
      kind: 'request',
      userId: 'otto',
      role: 'operator',
      clientAddress: '10.1.2.3',
      action: 'drain',
      nodes: ['node-a'],
      decision: 'denied',
      rule: 'policy.drainRole',
      message: 'role operator may not drain: policy.drainRole requires admin',
    });
    await audit.record({
      kind: 'request',
      userId: 'ada',
      role: 'admin',
      action: 'cordon',
      taskId: 'task-1',
      nodes: ['node-a', 'node-b'],
      decision: 'allowed',
      rule: 'policy.cordonRole',
    });
  } finally {
    await pool.end();
  }
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

it(
  '`nodebatch audit` prints the trail newest first, filtered, with the rule of a refusal',
  { timeout: 180_000 },
  async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--conditions=source', '--import', 'tsx', mainTs, 'audit', ...args],
          { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url }, timeout: 170_000 },
          (error, stdout, stderr) =>
            resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
        );
      });
    const result = await run(['--node', 'node-a']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+USER\s+ACTION\s+RESULT\s+NODES\s+TASK\s+DETAIL$/);
    expect(lines[1]).toMatch(/ada \(admin\)\s+cordon\s+allowed\s+node-a,node-b\s+task-1/);
    expect(lines[2]).toMatch(
      /otto \(operator\)\s+drain\s+denied\s+node-a\s+-\s+policy\.drainRole: role operator may not drain.*from 10\.1\.2\.3/,
    );
    expect(lines).toHaveLength(3);
  },
);

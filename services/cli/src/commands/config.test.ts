import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../../..');
const mainTs = join(repoRoot, 'services/cli/src/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'nb-config-cmd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `nodebatch config` as its own process with only the given variables
 * (plus PATH), the way an operator runs it; CONFIG_FILE always points into a
 * temp dir so a developer's ./config.yaml cannot change the outcome.
 */
function runConfig(args: string[], env: Record<string, string>, configYaml = ''): Promise<RunResult> {
  const configFile = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(configFile, configYaml);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', mainTs, 'config', ...args],
      {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? '', CONFIG_FILE: configFile, ...env },
        timeout: 170_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const PASSWORDS = [
  'db-secret-1',
  'url-secret-2',
  'redis-secret-3',
  'jwt-secret-4',
  'hint-key-5-0123456789abcdef0123456789',
];

// Each case starts Node with tsx; on a loaded CI machine that alone can take tens of seconds.
describe('nodebatch config', { timeout: 180_000 }, () => {
  it('--json prints every dotted key with value and source, secrets as set / not set', async () => {
    const result = await runConfig(
      ['--json'],
      {
        DB_HOST: 'db.internal',
        DATABASE_URL: 'postgres://app:url-secret-2@url-host:6000/appdb?sslmode=require',
        DB_PASSWORD: 'db-secret-1',
        REDIS_URL: 'redis://:redis-secret-3@cache:6380/2',
        AUTH_JWT_SECRET: 'jwt-secret-4',
        PROGRESS_HINT_KEY: 'hint-key-5-0123456789abcdef0123456789',
        PROGRESS_NOTIFY_TYPE: 'redis',
      },
      'database:\n  poolMax: 7\n',
    );
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as Record<string, { value: unknown; source: string }>;
    expect(printed['database.host']).toEqual({ value: 'db.internal', source: 'env:DB_HOST' });
    expect(printed['database.port']).toEqual({ value: 6000, source: 'url:DATABASE_URL' });
    expect(printed['database.database']).toEqual({ value: 'appdb', source: 'url:DATABASE_URL' });
    expect(printed['database.sslMode']).toEqual({ value: 'require', source: 'url:DATABASE_URL' });
    expect(printed['database.password']).toEqual({ value: 'set', source: 'env:DB_PASSWORD' });
    expect(printed['database.poolMax']?.value).toBe(7);
    expect(printed['database.poolMax']?.source).toMatch(/^file:.*config-.*\.yaml#database\.poolMax$/);
    expect(printed['redis.password']).toEqual({ value: 'set', source: 'url:REDIS_URL' });
    expect(printed['redis.db']).toEqual({ value: 2, source: 'url:REDIS_URL' });
    expect(printed['auth.jwtSecret']).toEqual({ value: 'set', source: 'env:AUTH_JWT_SECRET' });
    expect(printed['progress.hintKey']).toEqual({ value: 'set', source: 'env:PROGRESS_HINT_KEY' });
    expect(printed['progress.notifyType']).toEqual({ value: 'redis', source: 'env:PROGRESS_NOTIFY_TYPE' });
    expect(printed['log.level']).toEqual({ value: 'info', source: 'default' });
    for (const secret of PASSWORDS) expect(result.stdout + result.stderr).not.toContain(secret);
  });

  it('prints a table of key, value and source, without passwords', async () => {
    const result = await runConfig([], { DATABASE_HOST: 'db-b', DB_PASSWORD: 'db-secret-1' });
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^KEY\s+VALUE\s+SOURCE$/);
    expect(lines).toContainEqual(expect.stringMatching(/^database\.host\s+db-b\s+env:DATABASE_HOST$/));
    expect(lines).toContainEqual(expect.stringMatching(/^database\.password\s+set\s+env:DB_PASSWORD$/));
    expect(lines).toContainEqual(expect.stringMatching(/^redis\s+not configured\s+default$/));
    expect(lines).toContainEqual(expect.stringMatching(/^auth\.jwtSecret\s+not set\s+default$/));
    expect(lines).toContainEqual(expect.stringMatching(/^progress\.hintKey\s+not set\s+default$/));
    expect(result.stdout).not.toContain('db-secret-1');
  });

  it('shows the named clusters of the file, one entry each, and refuses a bad entry naming the key', async () => {
    const clusters = [
      'cluster:',
      '  clusters:',
      '    - name: prod',
      '      kubeconfig: /etc/kube/prod.yaml',
      '      default: true',
      '    - name: lab',
      '      mode: simulated',
    ].join('\n');
    const shown = await runConfig([], {}, clusters);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(
      /^cluster\.clusters\s+prod \(mode=kubernetes, kubeconfig=\/etc\/kube\/prod\.yaml, default\), lab \(mode=simulated\)\s+file:.*config-.*\.yaml#cluster\.clusters$/m,
    );
    const refused = await runConfig([], { NODEBATCH_CLUSTERS: 'prod;context=a,prod;context=b' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'NODEBATCH_CLUSTERS (from env NODEBATCH_CLUSTERS): entry 2: name: "prod" is listed twice',
    );
  });

  it('prints the nodes of a Redis Cluster as host:port, in the file spelling they came from', async () => {
    const result = await runConfig([], {}, 'redis:\n  cluster_nodes: "10.0.0.1:7000,[::1]:7001"\n');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n')).toContainEqual(
      expect.stringMatching(
        /^redis\.clusterNodes\s+10\.0\.0\.1:7000, \[::1\]:7001\s+file:.*#redis\.cluster_nodes$/,
      ),
    );
  });

  it('prints warnings on stderr and keeps --json parseable', async () => {
    const result = await runConfig(['--json'], { DB_HOSTNAME: 'oops', KUBERNETES_SERVICE_HOST: '10.0.0.1' });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      'warning: DB_HOSTNAME is set but nodebatch does not read it; did you mean DB_HOST?',
    );
    expect(result.stderr).toContain('warning: running inside Kubernetes');
    expect(JSON.parse(result.stdout)['database.host']).toEqual({ value: 'localhost', source: 'default' });
  });

  it('exits 1 with the message on an invalid value, never printing the password', async () => {
    const result = await runConfig(['--json'], { DB_PORT: 'abc', DB_PASSWORD: 'db-secret-1' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('DB_PORT="abc" (from env DB_PORT): expected an integer 1-65535');
    expect(result.stderr).not.toContain('db-secret-1');
  });
});

import { execFile } from 'node:child_process';
import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KUBERNETES_API_CALLS } from '@nodebatch/kube';
import { startFakeKubeApi, type FakeKubeApi } from '@nodebatch/kube/testing';
import {
  createTestDatabase,
  sharedDatabaseUrl,
  sharedRedisUrl,
  startPgBouncer,
  startRedisCluster,
  uniqueName,
  type PgBouncerServer,
  type RedisCluster,
  type TestDatabase,
} from '@nodebatch/testkit';
import pg from 'pg';
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
        // A simulated cluster unless a test points KUBECONFIG at the test API server.
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          LOG_LEVEL: 'silent',
          NODEBATCH_CLUSTER: 'simulated',
          ...env,
        },
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

  it('is read-only: pending migrations and a missing queue schema fail, naming the command that applies them', async () => {
    const result = await doctor({ ...dbEnv, PROGRESS_NOTIFY_TYPE: 'polling' }, ['--json']);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      checks: { name: string; status: string; detail: string; checklist?: string[] }[];
    };
    const check = (name: string) => report.checks.find((c) => c.name === name)!;
    expect(check('migrations')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(
        /^\d+ pending event store migration\(s\): 0001-event-log, 0002-node-end-index/,
      ),
    });
    expect(check('migrations').checklist?.join(' ')).toContain('nodebatch doctor --fix');
    expect(check('queue').status).toBe('fail');
    expect(check('queue').checklist?.join(' ')).toContain('nodebatch doctor --fix');
    expect(check('notifier')).toMatchObject({ status: 'skipped', detail: 'needs the migrations applied' });
    expect(report.ok).toBe(false);
    expect(result.code).toBe(1);

    // Nothing was created: no table, no schema.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')`,
      );
      expect(rows[0]?.n).toBe(0);
      const schema = await client.query<{ present: boolean }>(
        "SELECT to_regnamespace('bullmq') IS NOT NULL AS present",
      );
      expect(schema.rows[0]?.present).toBe(false);
    } finally {
      await client.end();
    }
  });

  it('applies them with --fix, after which a read-only run passes', async () => {
    const fixed = await doctor({ ...dbEnv, PROGRESS_NOTIFY_TYPE: 'polling' }, ['--fix']);
    expect(fixed.stdout).toMatch(/✅ migrations .*applied \d+ pending migration\(s\): 0001-event-log/);
    expect(fixed.code).toBe(0);
    const again = await doctor({ ...dbEnv, PROGRESS_NOTIFY_TYPE: 'polling' });
    expect(again.stdout).toMatch(/✅ migrations .*event store schema up to date/);
    expect(again.code).toBe(0);
  });

  it('passes every check against the test servers with Redis configured', async () => {
    const result = await doctor({ ...dbEnv, REDIS_URL: sharedRedisUrl() }, ['--fix']);
    expect(result.stdout).toMatch(/✅ database .*PostgreSQL \d+/);
    for (const check of ['clock', 'migrations', 'listener', 'redis', 'queue', 'notifier']) {
      expect(result.stdout).toMatch(new RegExp(`✅ ${check} `));
    }
    expect(result.stdout).toMatch(/✅ clock .*database clock (ahead|behind) by \d+ ms/);
    expect(result.stdout).toMatch(/✅ redis .*Redis [\d.]+ \(single\)/);
    expect(result.stdout).toContain("LISTEN on the pool's address");
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
      ['clock', 'ok'],
      ['migrations', 'ok'],
      ['listener', 'ok'],
      ['redis', 'skipped'],
      ['queue', 'ok'],
      ['notifier', 'ok'],
      ['kubernetes', 'skipped'],
    ]);
    expect(report.checks.find((c) => c.name === 'queue')?.detail).toContain('"backend":"postgres"');
    expect(report.config['progress.notifyType']).toEqual({
      value: 'polling',
      source: 'env:PROGRESS_NOTIFY_TYPE',
    });
    expect(result.code).toBe(0);
  });

  it('checks each permission the worker needs on the Kubernetes API with a SelfSubjectAccessReview', async () => {
    const api: FakeKubeApi = await startFakeKubeApi({ nodes: ['node-1'] });
    try {
      const env = {
        ...dbEnv,
        PROGRESS_NOTIFY_TYPE: 'polling',
        NODEBATCH_CLUSTER: 'kubernetes',
        KUBECONFIG: api.kubeconfigPath,
      };
      const allowed = await doctor(env, ['--fix']);
      expect(allowed.stdout).toMatch(
        /✅ kubernetes .*allows get nodes, patch nodes, list pods, create pods\/eviction/,
      );
      expect(allowed.code).toBe(0);
      expect(api.requestsTo('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews')).toHaveLength(
        KUBERNETES_API_CALLS.length,
      );
      // Looking touches no node.
      expect(api.requests.filter((r) => !r.path.startsWith('/apis/authorization.k8s.io/'))).toEqual([]);

      api.permissions.deny({ apiGroup: '', resource: 'pods', subresource: 'eviction', verb: 'create' });
      const denied = await doctor(env);
      expect(denied.stdout).toMatch(/❌ kubernetes .*denies what the worker needs: create pods\/eviction/);
      expect(denied.stdout).toContain('nodebatch-worker');
      expect(denied.code).toBe(1);

      // The same kubeconfig once the server is gone (close() removes its directory).
      const copy = join(await mkdtemp(join(tmpdir(), 'nb-doctor-kube-')), 'kubeconfig');
      await copyFile(api.kubeconfigPath, copy);
      await api.close();
      const unreachable = await doctor({ ...env, KUBECONFIG: copy });
      expect(unreachable.stdout).toMatch(
        /❌ kubernetes .*cannot reach the Kubernetes API at https?:\/\/127\.0\.0\.1:\d+/,
      );
    } finally {
      await api.close().catch(() => undefined);
    }
  });

  it('checks each named cluster on its own API server, and says which one lacks a permission', async () => {
    const [east, west] = await Promise.all([
      startFakeKubeApi({ nodes: ['east-1'] }),
      startFakeKubeApi({ nodes: ['west-1'] }),
    ]);
    try {
      west.permissions.deny({ apiGroup: '', resource: 'nodes', verb: 'patch' });
      const result = await doctor({
        ...dbEnv,
        PROGRESS_NOTIFY_TYPE: 'polling',
        NODEBATCH_CLUSTER: 'kubernetes',
        NODEBATCH_CLUSTERS: `east;kubeconfig=${east.kubeconfigPath};default,west;kubeconfig=${west.kubeconfigPath},lab;mode=simulated`,
      });
      expect(result.stdout, result.stderr).toMatch(/✅ kubernetes east .*allows get nodes, patch nodes/);
      expect(result.stdout).toMatch(/❌ kubernetes west .*denies what the worker needs: patch nodes/);
      expect(result.stdout).toMatch(/kubernetes lab .*simulated cluster \(mode: simulated\)/);
      expect(result.code).toBe(1);
    } finally {
      await Promise.all([east.close(), west.close()]);
    }
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

describe('nodebatch doctor behind PgBouncer in transaction mode', () => {
  let db: TestDatabase;
  let bouncer: PgBouncerServer;

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: 'doctor_pool' });
    const upstream = new URL(sharedDatabaseUrl());
    bouncer = await startPgBouncer({
      upstream: { host: upstream.hostname, port: Number(upstream.port || 5432) },
    });
  });
  afterAll(async () => {
    await bouncer?.destroy();
    await db?.drop();
  });

  it('fails the listener check naming the pooler and DB_LISTEN_URL, and passes once DB_LISTEN_URL bypasses it', async () => {
    const env = {
      DATABASE_URL: bouncer.urlFor(db.name),
      QUEUE_NAME: uniqueName('doctor'),
      PROGRESS_NOTIFY_TYPE: 'postgres',
    };
    const pooled = await doctor(env, ['--fix', '--json']);
    const report = JSON.parse(pooled.stdout) as {
      checks: { name: string; status: string; detail: string; checklist?: string[] }[];
    };
    const check = (name: string) => report.checks.find((c) => c.name === name)!;
    expect(check('database').status).toBe('ok');
    expect(check('listener').status).toBe('fail');
    expect(check('listener').detail).toContain('pooler in transaction mode (PgBouncer)');
    expect(check('listener').checklist?.[0]).toMatch(
      /^Set DB_LISTEN_URL \(or DB_LISTEN_HOST \/ DB_LISTEN_PORT/,
    );
    expect(check('notifier')).toMatchObject({ status: 'warn' });
    expect(check('notifier').detail).toMatch(
      /round trip through polling .*fallback for postgres: .*DB_LISTEN_URL/,
    );
    expect(pooled.code).toBe(1);

    const direct = await doctor({ ...env, DB_LISTEN_URL: db.url });
    expect(direct.stdout).toMatch(
      /✅ listener .*LISTEN at 127\.0\.0\.1:\d+\/\S+ as postgres \(DB_LISTEN_\*\), apart from the pool at 127\.0\.0\.1:\d+/,
    );
    expect(direct.stdout).toMatch(/✅ notifier .*round trip through postgres/);
    expect(direct.stdout).toMatch(/database\.listenHost\s+127\.0\.0\.1\s+url:DB_LISTEN_URL/);
    expect(direct.code, direct.stdout).toBe(0);
  });
});

describe('nodebatch doctor on a Redis Cluster', () => {
  let db: TestDatabase;
  let cluster: RedisCluster;
  let env: Record<string, string>;

  beforeAll(async () => {
    [db, cluster] = await Promise.all([createTestDatabase({ prefix: 'doctorrc' }), startRedisCluster()]);
    env = {
      DATABASE_URL: db.url,
      QUEUE_NAME: uniqueName('doctorrc'),
      REDIS_CLUSTER_NODES: cluster.nodes,
      PROGRESS_NOTIFY_TYPE: 'redis',
    };
  }, 120_000);
  afterAll(async () => {
    await db?.drop();
    await cluster?.destroy();
  });

  it('reports the cluster mode, its masters and sharded Pub/Sub, and passes the queue and notifier checks through it', async () => {
    const result = await doctor(env, ['--fix']);
    expect(result.stdout).toMatch(
      /✅ redis .*Redis 7[\d.]+ \(cluster\) with 3 masters, state ok; progress hints use sharded Pub\/Sub \(SPUBLISH\/SSUBSCRIBE\)/,
    );
    expect(result.stdout).toMatch(/✅ queue /);
    expect(result.stdout).toContain('round trip through redis');
    expect(result.code, result.stdout).toBe(0);
  });

  it('fails the redis check while a master is down, naming the cluster state', async () => {
    const master = cluster.masters[2]!;
    await master.stop();
    try {
      let result: Awaited<ReturnType<typeof doctor>>;
      // The other masters mark it failed after the node timeout (1 s); until then the cluster still says ok.
      do result = await doctor(env, ['--json']);
      while (/"name":"redis","status":"ok"/.test(result.stdout.replace(/\s/g, '')));
      const report = JSON.parse(result.stdout) as {
        checks: { name: string; status: string; detail: string }[];
      };
      expect(report.checks.find((check) => check.name === 'redis')).toMatchObject({
        status: 'fail',
        detail: expect.stringMatching(/^Redis Cluster is not ok: .*127\.0\.0\.1:\d+ (fail|unreachable)/),
      });
      expect(result.code).toBe(1);
    } finally {
      await master.start();
      await cluster.waitUntilOk();
    }
  });

  it('says so when REDIS_CLUSTER_NODES names a single server, and when REDIS_URL names a node of a cluster', async () => {
    const asCluster = await doctor({ ...env, REDIS_CLUSTER_NODES: new URL(sharedRedisUrl()).host });
    expect(asCluster.stdout).toContain('which is a single Redis server, not a cluster');
    expect(asCluster.code).toBe(1);
    const asSingle = await doctor({ ...env, REDIS_CLUSTER_NODES: '', REDIS_URL: cluster.masters[0]!.url });
    expect(asSingle.stdout).toContain(
      'is a node of a Redis Cluster, but nodebatch is configured for a single server',
    );
    expect(asSingle.code).toBe(1);
  });
});

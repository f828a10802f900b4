import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DrainRefusedError } from './errors.js';
import { KubernetesNodeOperator } from './kubernetes-node-operator.js';
import { startFakeKubeApi, type FakeKubeApi, type FakePodInit } from './testing/index.js';

/*
 * The local Kubernetes API test server checked against the real kubectl: if kubectl can list,
 * cordon and drain through it, and refuses exactly the pods nodebatch refuses, the server speaks
 * the API as the tests of the operator assume. kubectl comes from scripts/ensure-kubectl.ts, which
 * installs it (apt-get update + install) on a fresh Debian machine.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ensured = spawnSync(
  process.execPath,
  ['--conditions=source', '--import', 'tsx', 'scripts/ensure-kubectl.ts', '--json'],
  { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 15 * 60_000 },
);
const found = (() => {
  try {
    return JSON.parse(ensured.stdout.trim().split('\n').at(-1) ?? '') as
      { kubectl: string } | { unavailable: string };
  } catch {
    return {
      unavailable: `scripts/ensure-kubectl.ts failed (exit ${ensured.status}): ${ensured.stderr ?? ''}`,
    };
  }
})();
const kubectlPath = 'kubectl' in found ? found.kubectl : undefined;
const skipReason = 'unavailable' in found ? found.unavailable : '';

const POD_SET: FakePodInit[] = [
  { namespace: 'shop', name: 'web', node: 'node-1', ownerKind: 'ReplicaSet', labels: { app: 'web' } },
  { namespace: 'shop', name: 'bare', node: 'node-1' },
  { namespace: 'shop', name: 'cache', node: 'node-1', ownerKind: 'ReplicaSet', emptyDir: true },
  { namespace: 'jobs', name: 'finished', node: 'node-1', phase: 'Succeeded' },
  { namespace: 'kube-system', name: 'agent', node: 'node-1', ownerKind: 'DaemonSet' },
  { namespace: 'kube-system', name: 'ghost', node: 'node-1', ownerKind: 'DaemonSet', orphaned: true },
  { namespace: 'kube-system', name: 'etcd-node-1', node: 'node-1', mirror: true },
  { namespace: 'shop', name: 'other', node: 'node-2', ownerKind: 'ReplicaSet' },
];

const execFileAsync = promisify(execFile);

describe.skipIf(!kubectlPath)(
  `the real kubectl against the test API server${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let fake: FakeKubeApi;
    let cacheDir: string;

    async function kubectl(...args: string[]) {
      try {
        const { stdout, stderr } = await execFileAsync(
          kubectlPath!,
          ['--kubeconfig', fake.kubeconfigPath, '--cache-dir', cacheDir, ...args],
          { timeout: 120_000 },
        );
        return { code: 0, stdout, stderr };
      } catch (error) {
        const failed = error as { code?: number; stdout?: string; stderr?: string };
        return { code: failed.code ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
      }
    }

    /** `namespace/name` of each pod kubectl refused, from its `cannot delete <why>: a, b` lines. */
    function kubectlRefusals(stderr: string): Map<string, string[]> {
      const refusals = new Map<string, string[]>();
      for (const line of stderr.split('\n')) {
        const match = /^cannot delete (.*): ([^:]+)$/.exec(line.trim());
        if (match) refusals.set(match[1]!, match[2]!.split(', ').sort());
      }
      return refusals;
    }

    beforeAll(async () => {
      fake = await startFakeKubeApi({ tls: true, nodes: ['node-1', 'node-2'], pods: POD_SET });
      cacheDir = await mkdtemp(join(tmpdir(), 'nodebatch-kubectl-cache-'));
    }, 120_000);

    afterAll(async () => {
      await fake?.close();
      if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
    });

    it('kubectl get nodes lists the nodes', async () => {
      const result = await kubectl('get', 'nodes', '-o', 'name');
      expect(result).toMatchObject({ code: 0 });
      expect(result.stdout.trim().split('\n')).toEqual(['node/node-1', 'node/node-2']);
    }, 120_000);

    it('kubectl cordon marks the node unschedulable', async () => {
      const result = await kubectl('cordon', 'node-2');
      expect(result).toMatchObject({ code: 0, stdout: 'node/node-2 cordoned\n' });
      expect(fake.nodes.get('node-2')!.spec.unschedulable).toBe(true);
      await kubectl('uncordon', 'node-2');
      expect(fake.nodes.get('node-2')!.spec.unschedulable).toBeUndefined();
    }, 120_000);

    it('kubectl drain refuses, without --force and --delete-emptydir-data, the pods nodebatch refuses', async () => {
      const result = await kubectl('drain', 'node-1', '--ignore-daemonsets', '--timeout=60s');
      expect(result.code).not.toBe(0);
      const byKubectl = kubectlRefusals(result.stderr);
      expect(byKubectl.get('Pods with local storage (use --delete-emptydir-data to override)')).toEqual([
        'shop/cache',
      ]);
      expect(
        byKubectl.get('cannot delete Pods that declare no controller (use --force to override)'),
      ).toEqual(['shop/bare']);

      const nodebatch = new KubernetesNodeOperator({ kubeConfig: fake.kubeConfig() });
      const error = await nodebatch.drain('node-1').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DrainRefusedError);
      const refusedByNodebatch = (error as DrainRefusedError).refused.flatMap((group) => group.pods).sort();
      // kubectl names the orphaned DaemonSet pod under `daemonsets.apps "…" not found`; nodebatch
      // under "declare no controller". The pods refused are the same.
      expect(refusedByNodebatch).toEqual([...byKubectl.values()].flat().sort());
      expect(refusedByNodebatch).toEqual(['kube-system/ghost', 'shop/bare', 'shop/cache']);
      expect(fake.requestsTo('POST', /\/eviction$/)).toEqual([]);
    }, 120_000);

    it('kubectl drain --ignore-daemonsets --delete-emptydir-data --force succeeds, through a budget refusal', async () => {
      fake.blockEviction('shop/web', 1, 'web-pdb');
      fake.clearRequests();
      const result = await kubectl(
        'drain',
        'node-1',
        '--ignore-daemonsets',
        '--delete-emptydir-data',
        '--force',
        '--timeout=90s',
      );
      expect(result).toMatchObject({ code: 0 });
      expect(result.stdout).toContain('node/node-1 drained');
      // kubectl understood the 429 Status as a budget refusal and retried.
      expect(result.stderr).toContain(
        `error when evicting pods/"web" -n "shop" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.`,
      );
      const left = [...fake.pods.values()]
        .filter((pod) => pod.spec.nodeName === 'node-1')
        .map((pod) => `${pod.metadata.namespace}/${pod.metadata.name}`)
        .sort();
      expect(left).toEqual(['kube-system/agent', 'kube-system/etcd-node-1']);
      const evicted = new Set(fake.requestsTo('POST', /\/eviction$/).map((request) => request.path));
      expect([...evicted].sort()).toEqual(
        ['jobs/finished', 'kube-system/ghost', 'shop/bare', 'shop/cache', 'shop/web'].map((pod) => {
          const [namespace, name] = pod.split('/');
          return `/api/v1/namespaces/${namespace}/pods/${name}/eviction`;
        }),
      );
    }, 180_000);

    it('nodebatch with force and deleteEmptyDirData removes the same pods kubectl did', async () => {
      const twin = await startFakeKubeApi({ nodes: ['node-1', 'node-2'], pods: POD_SET });
      try {
        const result = await new KubernetesNodeOperator({ kubeConfig: twin.kubeConfig() }).drain('node-1', {
          force: true,
          deleteEmptyDirData: true,
        });
        expect(result.evicted.sort()).toEqual([
          'jobs/finished',
          'kube-system/ghost',
          'shop/bare',
          'shop/cache',
          'shop/web',
        ]);
        expect(
          [...twin.pods.values()]
            .filter((pod) => pod.spec.nodeName === 'node-1')
            .map((pod) => `${pod.metadata.namespace}/${pod.metadata.name}`)
            .sort(),
        ).toEqual(['kube-system/agent', 'kube-system/etcd-node-1']);
      } finally {
        await twin.close();
      }
    }, 120_000);
  },
);

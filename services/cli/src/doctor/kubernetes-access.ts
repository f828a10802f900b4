import { checkKubernetesAccess, loadKubeConfig } from '@nodebatch/kube';
import type { ClusterTarget } from '@nodebatch/config';
import { CheckFailure } from './doctor-check.js';

/**
 * Whether the Kubernetes API answers with these credentials and allows every
 * call the worker makes, asked with SelfSubjectAccessReviews: nothing is
 * read or changed on any node.
 */
export async function checkKubernetes(
  cluster: Pick<ClusterTarget, 'kubeconfig' | 'context'>,
  env: Record<string, string | undefined>,
): Promise<string> {
  let loaded: ReturnType<typeof loadKubeConfig>;
  try {
    loaded = loadKubeConfig({
      env,
      ...(cluster.kubeconfig ? { kubeconfig: cluster.kubeconfig } : {}),
      ...(cluster.context ? { context: cluster.context } : {}),
    });
  } catch (err) {
    throw new CheckFailure((err as Error).message, [
      'Set KUBECONFIG, or run inside the cluster with a service account; NODEBATCH_CLUSTER=simulated for a simulated cluster.',
    ]);
  }
  let results: Awaited<ReturnType<typeof checkKubernetesAccess>>;
  try {
    results = await checkKubernetesAccess(loaded.kubeConfig);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CheckFailure(
      `cannot reach the Kubernetes API at ${loaded.server} (${loaded.source}): ${message}`,
      [`Is ${loaded.server} reachable from here, and are the credentials of ${loaded.source} valid?`],
    );
  }
  const denied = results.filter((result) => !result.allowed);
  const where = `API server ${loaded.server} (${loaded.source})`;
  if (denied.length > 0) {
    throw new CheckFailure(
      `${where} denies what the worker needs: ${denied.map((r) => r.description).join(', ')}`,
      [
        'Grant them to the worker’s service account (the ClusterRole nodebatch-worker in deploy/kubernetes/rbac.yaml).',
        ...denied.filter((r) => r.reason).map((r) => `${r.description}: ${r.reason}`),
      ],
    );
  }
  return `${where} allows ${results.map((r) => r.description).join(', ')}`;
}

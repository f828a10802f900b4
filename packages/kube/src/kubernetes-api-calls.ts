/** One kind of request the Kubernetes operator makes, in RBAC terms. */
export interface KubernetesApiCall {
  /** API group; '' is the core group. */
  apiGroup: string;
  resource: string;
  subresource?: string;
  verb: 'get' | 'list' | 'patch' | 'create' | 'delete';
}

/**
 * Every request KubernetesNodeOperator makes. The deploy manifests' ClusterRole must grant exactly
 * these (a test compares them), so a new call here fails that test until the RBAC rules follow.
 */
export const KUBERNETES_API_CALLS: readonly KubernetesApiCall[] = [
  // taints: read the node (taints + resourceVersion) before a conflict-checked patch; copyTaints reads the source
  { apiGroup: '', resource: 'nodes', verb: 'get' },
  // cordon, uncordon, labels, taints
  { apiGroup: '', resource: 'nodes', verb: 'patch' },
  // drain: the pods on the node (fieldSelector spec.nodeName=...), and waiting for them to go
  { apiGroup: '', resource: 'pods', verb: 'list' },
  // drain: POST /api/v1/namespaces/{ns}/pods/{name}/eviction (a policy/v1 Eviction body)
  { apiGroup: '', resource: 'pods', subresource: 'eviction', verb: 'create' },
  // drain: read each evicted pod until it is gone (404 or a new UID), as kubectl does
  { apiGroup: '', resource: 'pods', verb: 'get' },
  // drain: is the DaemonSet of a DaemonSet pod still there (an orphaned pod has no controller)
  { apiGroup: 'apps', resource: 'daemonsets', verb: 'get' },
  // drain with disableEviction only (explicit, bypasses PodDisruptionBudgets): DELETE the pod
  { apiGroup: '', resource: 'pods', verb: 'delete' },
];

/** `verb resource[/subresource]` for messages, e.g. `create pods/eviction`. */
export function describeApiCall(call: KubernetesApiCall): string {
  const resource = call.subresource ? `${call.resource}/${call.subresource}` : call.resource;
  return `${call.verb} ${call.apiGroup ? `${call.apiGroup}/` : ''}${resource}`;
}

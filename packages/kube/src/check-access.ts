import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeApiCall, KUBERNETES_API_CALLS, type KubernetesApiCall } from './kubernetes-api-calls.js';

/** The answer for one call the worker makes. */
export interface AccessCheckResult {
  call: KubernetesApiCall;
  /** `verb resource`, e.g. `create pods/eviction`. */
  description: string;
  allowed: boolean;
  /** The authorizer's reason, when it gave one. */
  reason?: string;
}

/**
 * Asks the API server, with one SelfSubjectAccessReview per call, whether the
 * credentials of `kubeConfig` may make every request the worker makes
 * (KUBERNETES_API_CALLS). Reviews are answered by the authorizer without
 * touching any node, so this is safe to run against a production cluster.
 * Rejects when the API server cannot be reached or refuses the review itself.
 */
export async function checkKubernetesAccess(
  kubeConfig: KubeConfig,
  calls: readonly KubernetesApiCall[] = KUBERNETES_API_CALLS,
): Promise<AccessCheckResult[]> {
  const api = kubeConfig.makeApiClient(AuthorizationV1Api);
  return Promise.all(
    calls.map(async (call) => {
      const review = await api.createSelfSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: {
            resourceAttributes: {
              group: call.apiGroup,
              resource: call.resource,
              verb: call.verb,
              ...(call.subresource ? { subresource: call.subresource } : {}),
            },
          },
        },
      });
      const allowed = review.status?.allowed === true;
      const reason = review.status?.reason;
      return { call, description: describeApiCall(call), allowed, ...(reason ? { reason } : {}) };
    }),
  );
}

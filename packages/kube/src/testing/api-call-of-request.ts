import type { KubernetesApiCall } from '../kubernetes-api-calls.js';
import type { RecordedRequest } from './fake-kube-api.js';

/**
 * The RBAC terms (group, resource, subresource, verb) of a request to the Kubernetes API, as the
 * API server's authorizer derives them from the path and method.
 */
export function apiCallOfRequest(
  request: Pick<RecordedRequest, 'method' | 'path' | 'query'>,
): KubernetesApiCall {
  const parts = request.path.split('/').filter(Boolean);
  let apiGroup: string;
  let rest: string[];
  if (parts[0] === 'api') {
    apiGroup = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis') {
    apiGroup = parts[1] ?? '';
    rest = parts.slice(3);
  } else {
    throw new Error(`not a Kubernetes API path: ${request.path}`);
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const [resource, name, subresource] = rest;
  if (!resource) throw new Error(`no resource in ${request.path}`);
  const verbs: Record<string, KubernetesApiCall['verb'] | undefined> = {
    GET: name ? 'get' : 'list',
    PATCH: 'patch',
    POST: 'create',
    DELETE: 'delete',
  };
  const verb = verbs[request.method.toUpperCase()];
  if (!verb) throw new Error(`no verb for ${request.method} ${request.path} in KubernetesApiCall`);
  return { apiGroup, resource, ...(subresource ? { subresource } : {}), verb };
}

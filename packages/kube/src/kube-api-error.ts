import { ApiException } from '@kubernetes/client-node';
import { KubeOperationError, type KubeErrorCode } from './errors.js';
import { KUBERNETES_API_CALLS, describeApiCall } from './kubernetes-api-calls.js';

/** HTTP status of a failed client-node call, or undefined when the server never answered. */
export function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** The `details.causes` of the metav1.Status body a failed call answered with (empty when none). */
export function statusCauses(error: unknown): { type?: string; reason?: string; message?: string }[] {
  if (!(error instanceof ApiException)) return [];
  let body: unknown = error.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return [];
    }
  }
  const causes = (body as { details?: { causes?: unknown } } | null)?.details?.causes;
  return Array.isArray(causes)
    ? causes.filter((cause): cause is { type?: string; reason?: string; message?: string } =>
        Boolean(cause && typeof cause === 'object'),
      )
    : [];
}

/** The API server's own explanation (a metav1.Status `message`), when it sent one. */
function serverMessage(error: ApiException<unknown>): string | undefined {
  let body: unknown = error.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text.trim().slice(0, 500) || undefined;
    }
  }
  if (body && typeof body === 'object') {
    const { message, reason } = body as { message?: unknown; reason?: unknown };
    if (typeof message === 'string' && message)
      return typeof reason === 'string' ? `${reason}: ${message}` : message;
  }
  return undefined;
}

function classify(status: number, target: 'node' | 'other'): { code: KubeErrorCode; retryable: boolean } {
  if (status === 404) return { code: target === 'node' ? 'NODE_NOT_FOUND' : 'NOT_FOUND', retryable: false };
  if (status === 401) return { code: 'UNAUTHORIZED', retryable: false };
  if (status === 403) return { code: 'FORBIDDEN', retryable: false };
  // A conflict that survived the operator's own re-read retries: another writer keeps changing the node.
  if (status === 409) return { code: 'CONFLICT', retryable: true };
  if (status === 429) return { code: 'EVICTION_BLOCKED', retryable: true };
  if (status === 400 || status === 415 || status === 422) return { code: 'INVALID', retryable: false };
  if (status >= 500) return { code: 'KUBE_SERVER_ERROR', retryable: true };
  return { code: 'KUBE_REQUEST_FAILED', retryable: false };
}

/**
 * A client-node failure as KubeOperationError: the status, the server's message and what to do,
 * never the request headers (they carry the bearer token).
 */
export function toKubeOperationError(
  error: unknown,
  context: { operation: string; node: string; what: string; target?: 'node' | 'other'; server?: string },
): KubeOperationError {
  if (error instanceof KubeOperationError) return error;
  const { operation, node, what } = context;
  if (error instanceof ApiException) {
    const status = error.code;
    const { code, retryable } = classify(status, context.target ?? 'node');
    let message = `${operation} of node "${node}" failed: ${what} answered HTTP ${status}`;
    const detail = serverMessage(error);
    if (detail) message += ` (${detail})`;
    if (status === 403) {
      message += `; the account in use needs RBAC permission for: ${KUBERNETES_API_CALLS.map(describeApiCall).join(', ')}`;
    } else if (status === 401) {
      message += '; the credentials of the kubeconfig or service account were refused';
    }
    // The ApiException's own message repeats the response headers; keep it only as the cause.
    return new KubeOperationError(message, {
      code,
      operation,
      node,
      statusCode: status,
      retryable,
      cause: error,
    });
  }
  const reason =
    error instanceof Error
      ? error.cause instanceof Error
        ? error.cause.message
        : error.message
      : String(error);
  // node-fetch's FetchError is a network failure (refused, reset, DNS); anything else failed before
  // sending, e.g. a kubeconfig client-node cannot use, which trying again will not fix.
  if (!(error instanceof Error && error.name === 'FetchError')) {
    return new KubeOperationError(
      `${operation} of node "${node}" failed: ${what}: the request could not be made (${reason})`,
      { code: 'KUBE_REQUEST_FAILED', operation, node, retryable: false, cause: error },
    );
  }
  return new KubeOperationError(
    `${operation} of node "${node}" failed: ${what}: could not reach the API server${context.server ? ` at ${context.server}` : ''} (${reason})`,
    { code: 'KUBE_UNREACHABLE', operation, node, retryable: true, cause: error },
  );
}

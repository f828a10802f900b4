import type { KubernetesApiCall } from '../kubernetes-api-calls.js';

/** Path of the SelfSubjectAccessReview endpoint (authorization.k8s.io/v1). */
export const SELF_SUBJECT_ACCESS_REVIEW_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

/** What the fake API server's caller may do; everything is allowed until denied. */
export interface FakePermissions {
  /** Answers `allowed: false` for this call from now on. */
  deny(call: KubernetesApiCall): void;
  /** Allows everything again. */
  allowAll(): void;
  /** Whether `call` is allowed; the same answer the review endpoint gives. */
  allows(call: KubernetesApiCall): boolean;
}

/** A rejected review body, answered like the API server's 400. */
export class InvalidAccessReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidAccessReviewError';
  }
}

const key = (call: KubernetesApiCall) =>
  `${call.apiGroup}/${call.resource}/${call.subresource ?? ''}/${call.verb}`;

export function createFakePermissions(): FakePermissions {
  const denied = new Set<string>();
  return {
    deny: (call) => void denied.add(key(call)),
    allowAll: () => denied.clear(),
    allows: (call) => !denied.has(key(call)),
  };
}

/**
 * The API server's answer to POST selfsubjectaccessreviews: the request
 * object with `status.allowed` filled in. Only resource attributes are
 * supported, which is what a permission check of the worker sends.
 */
export function reviewAccess(permissions: FakePermissions, body: unknown): Record<string, unknown> {
  const review = body as {
    kind?: unknown;
    spec?: { resourceAttributes?: Record<string, unknown> };
  } | null;
  if (review?.kind !== 'SelfSubjectAccessReview') {
    throw new InvalidAccessReviewError('the body is not a SelfSubjectAccessReview');
  }
  const attributes = review.spec?.resourceAttributes;
  if (!attributes || typeof attributes.verb !== 'string' || typeof attributes.resource !== 'string') {
    throw new InvalidAccessReviewError('spec.resourceAttributes.verb and .resource are required');
  }
  const call = {
    apiGroup: typeof attributes.group === 'string' ? attributes.group : '',
    resource: attributes.resource,
    ...(typeof attributes.subresource === 'string' && attributes.subresource !== ''
      ? { subresource: attributes.subresource }
      : {}),
    verb: attributes.verb,
  } as KubernetesApiCall;
  const allowed = permissions.allows(call);
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    metadata: {},
    spec: review.spec,
    status: allowed ? { allowed: true } : { allowed: false, reason: 'denied by the fake API server' },
  };
}

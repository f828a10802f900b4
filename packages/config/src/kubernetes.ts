import type { Env } from './config-fields.js';

/** The kubelet sets KUBERNETES_SERVICE_HOST in every container of a pod. */
export function isInKubernetes(env: Env = process.env): boolean {
  return (env.KUBERNETES_SERVICE_HOST ?? '').trim().length > 0;
}

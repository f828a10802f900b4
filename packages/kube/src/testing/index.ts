export { instantClock } from './instant-clock.js';
export * from './fake-kube-api.js';
export { applyJsonPatch, applyMergePatch, JsonPatchError, type JsonPatchOperation } from './json-patch.js';
export { apiCallOfRequest } from './api-call-of-request.js';
export {
  SELF_SUBJECT_ACCESS_REVIEW_PATH,
  createFakePermissions,
  type FakePermissions,
} from './fake-access-review.js';

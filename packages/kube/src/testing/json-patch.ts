/*
 * The two generic patch formats the API server accepts for nodes, applied the way it applies them:
 * RFC 7386 JSON merge patch and RFC 6902 JSON patch.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386: objects merge key by key, null deletes, anything else (arrays included) replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/** A JSON patch could not be applied: a failed `test` or a path that does not exist (the API answers 422). */
export class JsonPatchError extends Error {}

export interface JsonPatchOperation {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new JsonPatchError(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isObject(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys(value[key])]),
    );
  }
  return value;
}

/** Applies RFC 6902 operations (add, remove, replace, test) to a copy of `document`. */
export function applyJsonPatch(document: unknown, operations: readonly JsonPatchOperation[]): unknown {
  let root: unknown = structuredClone(document);
  for (const operation of operations) {
    const tokens = parsePointer(operation.path);
    if (tokens.length === 0) {
      if (operation.op === 'test') {
        if (!deepEqual(root, operation.value)) throw new JsonPatchError('testing value at / failed');
        continue;
      }
      if (operation.op === 'add' || operation.op === 'replace') {
        root = structuredClone(operation.value);
        continue;
      }
      throw new JsonPatchError(`operation ${operation.op} on the whole document is not supported`);
    }
    const parentTokens = tokens.slice(0, -1);
    const last = tokens[tokens.length - 1]!;
    let parent: unknown = root;
    for (const token of parentTokens) {
      if (Array.isArray(parent)) parent = parent[Number(token)];
      else if (isObject(parent)) parent = parent[token];
      else parent = undefined;
      if (parent === undefined) throw new JsonPatchError(`path ${operation.path} does not exist`);
    }
    const exists = Array.isArray(parent)
      ? Number(last) >= 0 && Number(last) < parent.length
      : isObject(parent) && Object.prototype.hasOwnProperty.call(parent, last);
    const current = Array.isArray(parent)
      ? parent[Number(last)]
      : isObject(parent)
        ? parent[last]
        : undefined;
    switch (operation.op) {
      case 'test':
        if (!exists || !deepEqual(current, operation.value)) {
          throw new JsonPatchError(`testing value ${operation.path} failed`);
        }
        break;
      case 'add':
        if (Array.isArray(parent)) {
          const index = last === '-' ? parent.length : Number(last);
          if (!Number.isInteger(index) || index < 0 || index > parent.length) {
            throw new JsonPatchError(`index ${last} out of range at ${operation.path}`);
          }
          parent.splice(index, 0, structuredClone(operation.value) as Json);
        } else if (isObject(parent)) parent[last] = structuredClone(operation.value) as Json;
        else throw new JsonPatchError(`path ${operation.path} does not exist`);
        break;
      case 'remove':
      case 'replace':
        if (!exists) throw new JsonPatchError(`path ${operation.path} does not exist`);
        if (Array.isArray(parent)) {
          if (operation.op === 'remove') parent.splice(Number(last), 1);
          else parent[Number(last)] = structuredClone(operation.value) as Json;
        } else if (isObject(parent)) {
          if (operation.op === 'remove') delete parent[last];
          else parent[last] = structuredClone(operation.value) as Json;
        }
        break;
      default:
        throw new JsonPatchError(`unsupported JSON patch operation ${JSON.stringify(operation.op)}`);
    }
  }
  return root;
}

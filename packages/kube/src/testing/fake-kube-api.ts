import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { TAINT_EFFECTS } from '../node-operator.js';
import { labelKeyProblems, labelValueProblems } from '../validation.js';
import {
  InvalidAccessReviewError,
  SELF_SUBJECT_ACCESS_REVIEW_PATH,
  createFakePermissions,
  reviewAccess,
  type FakePermissions,
} from './fake-access-review.js';
import { JsonPatchError, applyJsonPatch, applyMergePatch, type JsonPatchOperation } from './json-patch.js';

/** A node as the fake API server stores and serves it (the JSON of a core/v1 Node). */
export interface FakeNode {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: {
    unschedulable?: boolean;
    taints?: { key: string; value?: string; effect: string; timeAdded?: string }[];
  };
  status: { conditions: { type: string; status: string }[] };
}

/** A pod as the fake API server stores and serves it (the JSON of a core/v1 Pod). */
export interface FakePod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller: boolean }[];
  };
  spec: { nodeName: string; containers: { name: string; image: string }[] };
  status: { phase: string };
}

export interface FakeNodeInit {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  taints?: FakeNode['spec']['taints'];
  unschedulable?: boolean;
}

export interface FakePodInit {
  name: string;
  /** Default 'default'. */
  namespace?: string;
  node: string;
  /** Kind of the controlling owner (`ReplicaSet`, `DaemonSet`, `StatefulSet`, ...); none for a bare pod. */
  ownerKind?: string;
  /** A mirror (static) pod: carries the kubernetes.io/config.mirror annotation. */
  mirror?: boolean;
}

/** One request the fake API server received, as tests assert on it. */
export interface RecordedRequest {
  method: string;
  /** URL path, decoded (`/api/v1/nodes/node-1`). */
  path: string;
  /** Query parameters, decoded (`{ fieldSelector: 'spec.nodeName=node-1' }`). */
  query: Record<string, string>;
  /** Content-Type without parameters, when the request had one. */
  contentType: string | undefined;
  /** The body parsed as JSON, or the raw text when it was not JSON; undefined when empty. */
  body: unknown;
  /** Whether a bearer token was sent (the token itself is never recorded). */
  authenticated: boolean;
  /** Status the fake answered. */
  status: number;
}

/** Makes the next `times` matching requests fail with `status` (a 500, a 503, a 403 ...). */
export interface FaultInjection {
  method?: string;
  /** Exact path, or a pattern tested against the path. Default: every path. */
  path?: string | RegExp;
  status: number;
  /** Default 1; Infinity for every matching request. */
  times?: number;
  message?: string;
}

export interface FakeKubeApiBehaviour {
  /** Whether an accepted eviction deletes the pod at once (true) or only marks it terminating. Default true. */
  deletePodsOnEviction: boolean;
  /** Holds every answer this long, ms (a slow or hung API server). Default 0. */
  responseDelayMs: number;
}

export interface FakeKubeApiOptions {
  nodes?: (string | FakeNodeInit)[];
  pods?: FakePodInit[];
  behaviour?: Partial<FakeKubeApiBehaviour>;
}

export interface FakeKubeApi {
  /** Base URL, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  /** A kubeconfig file (in a private temporary directory) pointing at this server with a bearer token. */
  readonly kubeconfigPath: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Live state, by node name. */
  readonly nodes: Map<string, FakeNode>;
  /** Live state, by `namespace/name`. */
  readonly pods: Map<string, FakePod>;
  /** What SelfSubjectAccessReviews answer; everything is allowed until denied. */
  readonly permissions: FakePermissions;
  /** A KubeConfig loaded from kubeconfigPath. */
  kubeConfig(): KubeConfig;
  addNode(init: string | FakeNodeInit): FakeNode;
  removeNode(name: string): void;
  addPod(init: FakePodInit): FakePod;
  /** Removes a pod (e.g. one left terminating when deletePodsOnEviction is false). */
  deletePod(key: string): void;
  /** Evictions of `namespace/name` answer 429 (PodDisruptionBudget) `times` times, or forever. */
  blockEviction(pod: string, times: number | 'forever'): void;
  injectFault(fault: FaultInjection): void;
  /** Another writer changes the node just before each of the next `times` PATCHes of it (so a conditional patch meets 409). */
  changeNodeBeforeNextPatch(node: string, times?: number): void;
  setBehaviour(behaviour: Partial<FakeKubeApiBehaviour>): void;
  /** Recorded requests matching method and path (exact or pattern). */
  requestsTo(method: string, path: string | RegExp): RecordedRequest[];
  clearRequests(): void;
  close(): Promise<void>;
}

const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
] as const;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** The metav1.StatusReason the API server gives with a status code. */
function reasonFor(status: number): string {
  const reasons: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    409: 'Conflict',
    422: 'Invalid',
    429: 'TooManyRequests',
    503: 'ServiceUnavailable',
    504: 'Timeout',
  };
  return reasons[status] ?? (status >= 500 ? 'InternalError' : 'Unknown');
}

/** A metav1.Status body, as the API server sends with every error. */
function statusBody(status: number, reason: string, message: string, details?: Record<string, unknown>) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: status < 400 ? 'Success' : 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code: status,
  };
}

/**
 * A local HTTP server speaking the parts of the Kubernetes API that node operations use, with the
 * real paths, verbs, content types, status codes and Status bodies: GET/PATCH nodes (merge, JSON
 * and strategic merge patches, resourceVersion preconditions answered 409), pod listing by
 * `spec.nodeName`, and policy/v1 evictions (429 while a pod is "protected by a PodDisruptionBudget").
 */
export async function startFakeKubeApi(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
  const token = randomBytes(16).toString('hex');
  const nodes = new Map<string, FakeNode>();
  const pods = new Map<string, FakePod>();
  const requests: RecordedRequest[] = [];
  const permissions = createFakePermissions();
  const faults: (FaultInjection & { remaining: number })[] = [];
  const blockedEvictions = new Map<string, number>();
  const pendingChanges = new Map<string, number>();
  const behaviour: FakeKubeApiBehaviour = {
    deletePodsOnEviction: true,
    responseDelayMs: 0,
    ...options.behaviour,
  };
  let revision = 1000;
  const nextVersion = () => String(++revision);
  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

  function addNode(init: string | FakeNodeInit): FakeNode {
    const spec = typeof init === 'string' ? { name: init } : init;
    const node: FakeNode = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: spec.name,
        uid: randomUUID(),
        resourceVersion: nextVersion(),
        creationTimestamp: now(),
        labels: { 'kubernetes.io/hostname': spec.name, ...spec.labels },
        ...(spec.annotations ? { annotations: { ...spec.annotations } } : {}),
      },
      spec: {
        ...(spec.unschedulable ? { unschedulable: true } : {}),
        ...(spec.taints?.length ? { taints: structuredClone(spec.taints) } : {}),
      },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    };
    nodes.set(spec.name, node);
    return node;
  }

  function addPod(init: FakePodInit): FakePod {
    const namespace = init.namespace ?? 'default';
    const pod: FakePod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: init.name,
        namespace,
        uid: randomUUID(),
        resourceVersion: nextVersion(),
        creationTimestamp: now(),
        ...(init.mirror
          ? { annotations: { 'kubernetes.io/config.mirror': randomBytes(8).toString('hex') } }
          : {}),
        ...(init.ownerKind
          ? {
              ownerReferences: [
                {
                  apiVersion:
                    init.ownerKind === 'ReplicaSet' || init.ownerKind === 'DaemonSet' ? 'apps/v1' : 'v1',
                  kind: init.ownerKind,
                  name: `${init.name}-owner`,
                  uid: randomUUID(),
                  controller: true,
                },
              ],
            }
          : {}),
      },
      spec: { nodeName: init.node, containers: [{ name: 'main', image: 'registry.example/app:1' }] },
      status: { phase: 'Running' },
    };
    pods.set(`${namespace}/${init.name}`, pod);
    return pod;
  }

  for (const node of options.nodes ?? []) addNode(node);
  for (const pod of options.pods ?? []) addPod(pod);

  function takeFault(method: string, path: string): FaultInjection | undefined {
    const index = faults.findIndex(
      (fault) =>
        fault.remaining > 0 &&
        (fault.method === undefined || fault.method.toUpperCase() === method) &&
        (fault.path === undefined ||
          (typeof fault.path === 'string' ? fault.path === path : fault.path.test(path))),
    );
    if (index < 0) return undefined;
    const fault = faults[index]!;
    fault.remaining -= 1;
    if (fault.remaining <= 0) faults.splice(index, 1);
    return fault;
  }

  function requireNode(name: string): FakeNode {
    const node = nodes.get(name);
    if (!node) throw new HttpError(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' });
    return node;
  }

  function nodeProblems(node: FakeNode): { field: string; message: string }[] {
    const problems: { field: string; message: string }[] = [];
    for (const [key, value] of Object.entries(node.metadata.labels ?? {})) {
      for (const message of labelKeyProblems(key)) problems.push({ field: 'metadata.labels', message });
      if (typeof value !== 'string')
        problems.push({ field: `metadata.labels`, message: `value of ${key} must be a string` });
      else
        for (const message of labelValueProblems(value)) problems.push({ field: 'metadata.labels', message });
    }
    const seen = new Set<string>();
    (node.spec.taints ?? []).forEach((taint, index) => {
      const field = `spec.taints[${index}]`;
      for (const message of labelKeyProblems(String(taint.key ?? ''), 'taint key'))
        problems.push({ field: `${field}.key`, message });
      for (const message of labelValueProblems(String(taint.value ?? ''), 'taint value')) {
        problems.push({ field: `${field}.value`, message });
      }
      if (!(TAINT_EFFECTS as readonly string[]).includes(taint.effect)) {
        problems.push({ field: `${field}.effect`, message: `Unsupported value: "${taint.effect}"` });
      }
      const id = `${taint.key}:${taint.effect}`;
      if (seen.has(id)) problems.push({ field, message: 'taints must be unique by key and effect pair' });
      seen.add(id);
    });
    return problems;
  }

  function patchNode(name: string, contentType: string | undefined, body: unknown): FakeNode {
    if (!contentType || !(PATCH_TYPES as readonly string[]).includes(contentType)) {
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}, application/apply-patch+yaml`,
      );
    }
    const node = requireNode(name);
    // A concurrent writer, staged by the test, gets in just before this request is handled.
    const changes = pendingChanges.get(name) ?? 0;
    if (changes > 0) {
      pendingChanges.set(name, changes - 1);
      node.metadata.annotations = {
        ...node.metadata.annotations,
        'example.com/touched-by': `other-${revision}`,
      };
      node.metadata.resourceVersion = nextVersion();
    }
    let patched: FakeNode;
    if (contentType === 'application/json-patch+json') {
      if (!Array.isArray(body))
        throw new HttpError(
          400,
          'BadRequest',
          'json: cannot unmarshal object into Go value of type jsonpatch.Patch',
        );
      try {
        patched = applyJsonPatch(node, body as JsonPatchOperation[]) as FakeNode;
      } catch (error) {
        if (error instanceof JsonPatchError) throw new HttpError(422, 'Invalid', error.message);
        throw error;
      }
    } else {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new HttpError(400, 'BadRequest', 'the patch must be a JSON object');
      }
      // Strategic merge patch behaves as a merge patch for every node field nodebatch touches
      // (labels are a map; spec.taints has no patch merge key, so it is replaced whole).
      patched = applyMergePatch(node, body) as FakeNode;
    }
    // A resourceVersion in the patch is a precondition: it must equal the stored one.
    if (patched.metadata?.resourceVersion !== node.metadata.resourceVersion) {
      throw new HttpError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on nodes "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, kind: 'nodes' },
      );
    }
    patched.metadata = { ...patched.metadata, name: node.metadata.name, uid: node.metadata.uid };
    patched.spec ??= {};
    const problems = nodeProblems(patched);
    if (problems.length > 0) {
      throw new HttpError(
        422,
        'Invalid',
        `Node "${name}" is invalid: ${problems.map((problem) => `${problem.field}: ${problem.message}`).join(', ')}`,
        {
          name,
          kind: 'Node',
          causes: problems.map((problem) => ({ reason: 'FieldValueInvalid', ...problem })),
        },
      );
    }
    if (JSON.stringify(patched) !== JSON.stringify(node)) patched.metadata.resourceVersion = nextVersion();
    nodes.set(name, patched);
    return patched;
  }

  function listPods(query: Record<string, string>) {
    let items = [...pods.values()];
    const selector = query.fieldSelector;
    if (selector) {
      for (const term of selector.split(',')) {
        const match = /^([^!=]+)(==?|!=)(.*)$/.exec(term);
        if (!match || match[1] !== 'spec.nodeName') {
          throw new HttpError(400, 'BadRequest', `field label not supported: ${match?.[1] ?? term}`);
        }
        const wanted = match[3]!;
        items = items.filter((pod) =>
          match[2] === '!=' ? pod.spec.nodeName !== wanted : pod.spec.nodeName === wanted,
        );
      }
    }
    return { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(revision) }, items };
  }

  function evict(namespace: string, name: string, contentType: string | undefined, body: unknown) {
    if (contentType !== 'application/json') {
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`,
      );
    }
    const eviction = body as
      { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } } | undefined;
    if (eviction?.apiVersion !== 'policy/v1' || eviction.kind !== 'Eviction') {
      throw new HttpError(
        400,
        'BadRequest',
        `expected a policy/v1 Eviction, got ${eviction?.apiVersion}/${eviction?.kind}`,
      );
    }
    if (eviction.metadata?.name !== name) {
      throw new HttpError(400, 'BadRequest', `name in URL does not match name in Eviction object`);
    }
    const key = `${namespace}/${name}`;
    const pod = pods.get(key);
    if (!pod) throw new HttpError(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
    const blocked = blockedEvictions.get(key) ?? 0;
    if (blocked > 0) {
      blockedEvictions.set(key, blocked - 1);
      throw new HttpError(
        429,
        'TooManyRequests',
        "Cannot evict pod as it would violate the pod's disruption budget.",
        {
          causes: [
            {
              reason: 'DisruptionBudget',
              message: `The disruption budget ${name}-pdb needs 1 healthy pods and has 1 currently`,
            },
          ],
        },
      );
    }
    if (behaviour.deletePodsOnEviction) pods.delete(key);
    else pod.metadata.deletionTimestamp ??= now();
    return statusBody(201, '', '', undefined);
  }

  function route(
    method: string,
    path: string,
    query: Record<string, string>,
    contentType: string | undefined,
    body: unknown,
  ) {
    let match: RegExpExecArray | null;
    if (path === SELF_SUBJECT_ACCESS_REVIEW_PATH && method === 'POST') {
      try {
        return { status: 201, body: reviewAccess(permissions, body) };
      } catch (error) {
        if (error instanceof InvalidAccessReviewError) throw new HttpError(400, 'BadRequest', error.message);
        throw error;
      }
    }
    if ((match = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path))) {
      const name = match[1]!;
      if (method === 'GET') return { status: 200, body: requireNode(name) };
      if (method === 'PATCH') return { status: 200, body: patchNode(name, contentType, body) };
      throw new HttpError(
        405,
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      );
    }
    if (path === '/api/v1/nodes' && method === 'GET') {
      return {
        status: 200,
        body: {
          kind: 'NodeList',
          apiVersion: 'v1',
          metadata: { resourceVersion: String(revision) },
          items: [...nodes.values()],
        },
      };
    }
    if (path === '/api/v1/pods' && method === 'GET') return { status: 200, body: listPods(query) };
    if (
      (match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/eviction$/.exec(path)) &&
      method === 'POST'
    ) {
      return { status: 201, body: evict(match[1]!, match[2]!, contentType, body) };
    }
    if ((match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path)) && method === 'GET') {
      const pod = pods.get(`${match[1]}/${match[2]}`);
      if (!pod)
        throw new HttpError(404, 'NotFound', `pods "${match[2]}" not found`, {
          name: match[2],
          kind: 'pods',
        });
      return { status: 200, body: pod };
    }
    throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(request.url ?? '/', 'http://fake');
    const method = (request.method ?? 'GET').toUpperCase();
    const path = decodeURIComponent(url.pathname);
    const query = Object.fromEntries(url.searchParams.entries());
    const contentType = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    let body: unknown;
    let bodyIsJson = true;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
        bodyIsJson = false;
      }
    }
    const authenticated = request.headers.authorization === `Bearer ${token}`;
    const record: RecordedRequest = {
      method,
      path,
      query,
      contentType,
      body,
      authenticated: Boolean(request.headers.authorization),
      status: 0,
    };
    requests.push(record);

    let status: number;
    let payload: unknown;
    try {
      if (!authenticated) throw new HttpError(401, 'Unauthorized', 'Unauthorized');
      const fault = takeFault(method, path);
      if (fault) {
        throw new HttpError(
          fault.status,
          reasonFor(fault.status),
          fault.message ?? `injected failure (HTTP ${fault.status})`,
        );
      }
      if (!bodyIsJson) throw new HttpError(400, 'BadRequest', 'the request body is not valid JSON');
      ({ status, body: payload } = route(method, path, query, contentType, body));
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      status = error.status;
      payload = statusBody(error.status, error.reason, error.message, error.details);
    }
    record.status = status;
    if (behaviour.responseDelayMs > 0) {
      // The timer must not keep the process alive, nor answer a client that already gave up.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, behaviour.responseDelayMs);
        timer.unref();
        response.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (response.destroyed) return;
    }
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(payload));
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify(
          statusBody(500, 'InternalError', error instanceof Error ? error.message : String(error)),
        ),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = await mkdtemp(join(tmpdir(), 'nodebatch-fake-kube-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  // JSON is YAML, so client-node and kubectl read this as any kubeconfig.
  await writeFile(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain http unless TLS verification is explicitly off.
      clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake-user', user: { token } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake-user' } }],
      'current-context': 'fake',
    }),
    { mode: 0o600 },
  );

  return {
    url,
    kubeconfigPath,
    requests,
    nodes,
    pods,
    permissions,
    kubeConfig() {
      const config = new KubeConfig();
      config.loadFromFile(kubeconfigPath);
      return config;
    },
    addNode,
    removeNode: (name) => void nodes.delete(name),
    addPod,
    deletePod: (key) => void pods.delete(key),
    blockEviction(pod, times) {
      blockedEvictions.set(pod, times === 'forever' ? Infinity : times);
    },
    injectFault(fault) {
      faults.push({ ...fault, remaining: fault.times ?? 1 });
    },
    changeNodeBeforeNextPatch(node, times = 1) {
      pendingChanges.set(node, (pendingChanges.get(node) ?? 0) + times);
    },
    setBehaviour(next) {
      Object.assign(behaviour, next);
    },
    requestsTo(method, path) {
      return requests.filter(
        (request) =>
          request.method === method.toUpperCase() &&
          (typeof path === 'string' ? request.path === path : path.test(request.path)),
      );
    },
    clearRequests() {
      requests.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

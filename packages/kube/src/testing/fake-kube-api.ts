import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { generate as generateCertificate } from 'selfsigned';
import { TAINT_EFFECTS } from '../node-operator.js';
import { labelKeyProblems, labelValueProblems } from '../validation.js';
import { LabelSelectorSyntaxError, matchesLabelSelector, parseLabelSelector } from '../label-selector.js';
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
    deletionGracePeriodSeconds?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller: boolean }[];
  };
  spec: {
    nodeName: string;
    containers: { name: string; image: string }[];
    volumes?: { name: string; emptyDir?: Record<string, never>; configMap?: { name: string } }[];
    terminationGracePeriodSeconds: number;
  };
  status: { phase: string };
}

/** A PodDisruptionBudget as the fake enforces it: evictions of matching pods are refused (429) while `refusals` remain. */
export interface FakeDisruptionBudget {
  name: string;
  namespace: string;
  /** Label selector of the pods it protects. */
  selector: string;
  /** Evictions refused before it allows them; Infinity = always. */
  refusals: number;
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
  /** With ownerKind DaemonSet: the DaemonSet does not exist (an orphaned pod). Default false. */
  orphaned?: boolean;
  labels?: Record<string, string>;
  /** Gives the pod an emptyDir volume (local data). Default false. */
  emptyDir?: boolean;
  /** Default 'Running'. */
  phase?: string;
  /** Default 30, as the API server defaults it. */
  terminationGracePeriodSeconds?: number;
  /** When its deletion completes, a new pod of the same name (a new UID) appears on this node, as a StatefulSet does. */
  recreateOn?: string;
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
  /** When it arrived, by the fake's clock (ms). */
  at: number;
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
  /**
   * Whether an accepted eviction or delete ends in the pod's removal (true), or leaves it terminating
   * for good (false: a NotReady node's kubelet never confirms). Default true.
   */
  deletePodsOnEviction: boolean;
  /**
   * Graceful deletion that takes time: a deleted pod stays (with deletionTimestamp) for this many
   * reads of it (GET or list) before it is gone. Counted in reads, not ms, so tests need no timing.
   * Default 0: gone at once.
   */
  terminationReads: number;
  /** Holds every answer this long, ms (a slow or hung API server). Default 0. */
  responseDelayMs: number;
}

export interface FakeKubeApiOptions {
  nodes?: (string | FakeNodeInit)[];
  pods?: FakePodInit[];
  behaviour?: Partial<FakeKubeApiBehaviour>;
  /** Time of recorded requests and deletionTimestamps, ms. Default Date.now. */
  now?: () => number;
  /**
   * Serve HTTPS with a fresh self-signed certificate that the kubeconfig trusts. kubectl sends
   * bearer tokens only over TLS, so tests running kubectl need it. Default false (plain HTTP).
   */
  tls?: boolean;
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
  /** A KubeConfig loaded from kubeconfigPath. */
  kubeConfig(): KubeConfig;
  addNode(init: string | FakeNodeInit): FakeNode;
  removeNode(name: string): void;
  addPod(init: FakePodInit): FakePod;
  /** Removes a pod (e.g. one left terminating when deletePodsOnEviction is false). */
  deletePod(key: string): void;
  /** Evictions of `namespace/name` answer 429 (PodDisruptionBudget `budget`, default `<name>-pdb`) `times` times, or forever. */
  blockEviction(pod: string, times: number | 'forever', budget?: string): void;
  /** A PodDisruptionBudget refusing evictions of the pods its selector matches, `refusals` times. */
  addDisruptionBudget(
    budget: Omit<FakeDisruptionBudget, 'refusals'> & { refusals: number | 'forever' },
  ): void;
  /** The namespace is being deleted: its pods get a deletionTimestamp, evictions in it answer 403 NamespaceTerminating. */
  terminateNamespace(namespace: string, options?: { markPodsDeleted?: boolean }): void;
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
  const faults: (FaultInjection & { remaining: number })[] = [];
  const blockedEvictions = new Map<string, { times: number; budget: string }>();
  const budgets: FakeDisruptionBudget[] = [];
  const terminatingNamespaces = new Set<string>();
  /** Reads left before a terminating pod is gone, by `namespace/name`. */
  const terminationReadsLeft = new Map<string, number>();
  const daemonSets = new Set<string>();
  const clockNow = options.now ?? Date.now;
  const pendingChanges = new Map<string, number>();
  const behaviour: FakeKubeApiBehaviour = {
    deletePodsOnEviction: true,
    terminationReads: 0,
    responseDelayMs: 0,
    ...options.behaviour,
  };
  let revision = 1000;
  const nextVersion = () => String(++revision);
  const now = () => new Date(clockNow()).toISOString().replace(/\.\d{3}Z$/, 'Z');

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
    const ownerName = `${init.name}-owner`;
    const pod: FakePod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: init.name,
        namespace,
        uid: randomUUID(),
        resourceVersion: nextVersion(),
        creationTimestamp: now(),
        ...(init.labels ? { labels: { ...init.labels } } : {}),
        ...(init.mirror
          ? { annotations: { 'kubernetes.io/config.mirror': randomBytes(8).toString('hex') } }
          : {}),
        ...(init.ownerKind
          ? {
              ownerReferences: [
                {
                  apiVersion: ['ReplicaSet', 'DaemonSet', 'StatefulSet'].includes(init.ownerKind)
                    ? 'apps/v1'
                    : init.ownerKind === 'Job'
                      ? 'batch/v1'
                      : 'v1',
                  kind: init.ownerKind,
                  name: ownerName,
                  uid: randomUUID(),
                  controller: true,
                },
              ],
            }
          : {}),
      },
      spec: {
        nodeName: init.node,
        containers: [{ name: 'main', image: 'registry.example/app:1' }],
        ...(init.emptyDir ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}),
        terminationGracePeriodSeconds: init.terminationGracePeriodSeconds ?? 30,
      },
      status: { phase: init.phase ?? 'Running' },
    };
    if (init.ownerKind === 'DaemonSet' && !init.orphaned) daemonSets.add(`${namespace}/${ownerName}`);
    pods.set(`${namespace}/${init.name}`, pod);
    if (init.recreateOn) recreations.set(`${namespace}/${init.name}`, { ...init, node: init.recreateOn });
    return pod;
  }
  const recreations = new Map<string, FakePodInit>();

  /** Starts a pod's graceful deletion; it is gone after `terminationReads` reads (or never). */
  function startDeletion(key: string, gracePeriodSeconds: number | undefined): void {
    const pod = pods.get(key);
    if (!pod) return;
    if (!pod.metadata.deletionTimestamp) {
      pod.metadata.deletionTimestamp = now();
      pod.metadata.deletionGracePeriodSeconds = gracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds;
      pod.metadata.resourceVersion = nextVersion();
    }
    if (!behaviour.deletePodsOnEviction) return;
    if (behaviour.terminationReads <= 0) finishDeletion(key);
    else if (!terminationReadsLeft.has(key)) terminationReadsLeft.set(key, behaviour.terminationReads);
  }

  function finishDeletion(key: string): void {
    pods.delete(key);
    terminationReadsLeft.delete(key);
    const again = recreations.get(key);
    if (again) {
      recreations.delete(key);
      const { recreateOn: _ignored, ...init } = again;
      addPod(init);
    }
  }

  /** A read of a terminating pod brings its end closer; true when that read found it gone. */
  function readPod(key: string): FakePod | undefined {
    const left = terminationReadsLeft.get(key);
    if (left !== undefined) {
      if (left <= 0) finishDeletion(key);
      else terminationReadsLeft.set(key, left - 1);
    }
    return pods.get(key);
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

  function patchNode(
    name: string,
    contentType: string | undefined,
    body: unknown,
    dryRun: boolean,
  ): FakeNode {
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
    if (dryRun) return patched;
    if (JSON.stringify(patched) !== JSON.stringify(node)) patched.metadata.resourceVersion = nextVersion();
    nodes.set(name, patched);
    return patched;
  }

  function selectorOf(query: Record<string, string>) {
    try {
      return parseLabelSelector(query.labelSelector ?? '');
    } catch (error) {
      if (error instanceof LabelSelectorSyntaxError)
        throw new HttpError(400, 'BadRequest', `unable to parse requirement: ${error.message}`);
      throw error;
    }
  }

  /** A list answer with limit/continue paging as the API server does it (continue = the next index). */
  function page<T>(kind: string, items: T[], query: Record<string, string>) {
    const start = query.continue ? Number(Buffer.from(query.continue, 'base64url').toString('utf8')) : 0;
    if (!Number.isInteger(start) || start < 0)
      throw new HttpError(400, 'BadRequest', 'invalid continue token');
    const limit = query.limit ? Number(query.limit) : 0;
    const end = limit > 0 ? start + limit : items.length;
    const more = end < items.length;
    return {
      kind,
      apiVersion: 'v1',
      metadata: {
        resourceVersion: String(revision),
        ...(more
          ? {
              continue: Buffer.from(String(end)).toString('base64url'),
              remainingItemCount: items.length - end,
            }
          : {}),
      },
      items: items.slice(start, end),
    };
  }

  function listPods(query: Record<string, string>, namespace?: string) {
    // Every listing is a read of each terminating pod it shows (see terminationReads).
    for (const key of [...terminationReadsLeft.keys()]) readPod(key);
    let items = [...pods.values()].filter(
      (pod) => namespace === undefined || pod.metadata.namespace === namespace,
    );
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
    const labels = selectorOf(query);
    items = items.filter((pod) => matchesLabelSelector(labels, pod.metadata.labels));
    return page('PodList', items, query);
  }

  function isDryRun(query: Record<string, string>, body?: unknown): boolean {
    if (query.dryRun !== undefined) {
      if (query.dryRun !== 'All')
        throw new HttpError(400, 'BadRequest', `Invalid dry run value: ${query.dryRun}`);
      return true;
    }
    const options = (body as { deleteOptions?: { dryRun?: unknown }; dryRun?: unknown } | undefined) ?? {};
    const dryRun = options.deleteOptions?.dryRun ?? options.dryRun;
    return Array.isArray(dryRun) && dryRun.includes('All');
  }

  function evict(
    namespace: string,
    name: string,
    contentType: string | undefined,
    body: unknown,
    query: Record<string, string>,
  ) {
    if (contentType !== 'application/json') {
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`,
      );
    }
    const eviction = body as
      | {
          apiVersion?: string;
          kind?: string;
          metadata?: { name?: string; namespace?: string };
          deleteOptions?: { gracePeriodSeconds?: number };
        }
      | undefined;
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
    const dryRun = isDryRun(query, body);
    const key = `${namespace}/${name}`;
    const pod = pods.get(key);
    if (!pod) throw new HttpError(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
    if (terminatingNamespaces.has(namespace)) {
      throw new HttpError(
        403,
        'Forbidden',
        `pods "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
        {
          name,
          kind: 'pods',
          causes: [
            {
              reason: 'NamespaceTerminating',
              type: 'NamespaceTerminating',
              message: `namespace ${namespace} is being terminated`,
              field: 'metadata.namespace',
            },
          ],
        },
      );
    }
    // As the API server: a pod already being deleted is not checked against its budget again.
    if (!pod.metadata.deletionTimestamp) {
      const refuse = (budget: string) => {
        throw new HttpError(
          429,
          'TooManyRequests',
          "Cannot evict pod as it would violate the pod's disruption budget.",
          {
            causes: [
              {
                reason: 'DisruptionBudget',
                message: `The disruption budget ${budget} needs 1 healthy pods and has 1 currently`,
              },
            ],
          },
        );
      };
      const blocked = blockedEvictions.get(key);
      if (blocked && blocked.times > 0) {
        if (!dryRun) blocked.times -= 1;
        refuse(blocked.budget);
      }
      for (const budget of budgets) {
        if (
          budget.namespace === namespace &&
          budget.refusals > 0 &&
          matchesLabelSelector(parseLabelSelector(budget.selector), pod.metadata.labels)
        ) {
          if (!dryRun) budget.refusals -= 1;
          refuse(budget.name);
        }
      }
    }
    if (!dryRun) startDeletion(key, eviction.deleteOptions?.gracePeriodSeconds);
    return statusBody(201, '', '', undefined);
  }

  function deletePodRequest(namespace: string, name: string, query: Record<string, string>, body: unknown) {
    const key = `${namespace}/${name}`;
    const pod = pods.get(key);
    if (!pod) throw new HttpError(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
    const options = (body as { gracePeriodSeconds?: number } | undefined) ?? {};
    const grace =
      query.gracePeriodSeconds !== undefined ? Number(query.gracePeriodSeconds) : options.gracePeriodSeconds;
    const answer = structuredClone(pod);
    if (!isDryRun(query, body)) startDeletion(key, grace);
    return answer;
  }

  /** Discovery documents, enough for kubectl's RESTMapper and its eviction support check. */
  function discovery(path: string) {
    const resource = (name: string, kind: string, namespaced: boolean, verbs: string[], extra = {}) => ({
      name,
      singularName: name.endsWith('/eviction') || name.includes('/') ? '' : name.replace(/s$/, ''),
      namespaced,
      kind,
      verbs,
      ...extra,
    });
    switch (path) {
      case '/version':
        return { major: '1', minor: '32', gitVersion: 'v1.32.0', platform: 'linux/amd64' };
      case '/api':
        return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
      case '/apis':
        return {
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: ['apps', 'policy'].map((group) => ({
            name: group,
            versions: [{ groupVersion: `${group}/v1`, version: 'v1' }],
            preferredVersion: { groupVersion: `${group}/v1`, version: 'v1' },
          })),
        };
      case '/api/v1':
        return {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [
            resource('nodes', 'Node', false, ['get', 'list', 'patch', 'update'], { shortNames: ['no'] }),
            resource('pods', 'Pod', true, ['get', 'list', 'delete'], { shortNames: ['po'] }),
            resource('pods/eviction', 'Eviction', true, ['create'], { group: 'policy', version: 'v1' }),
            resource('namespaces', 'Namespace', false, ['get', 'list'], { shortNames: ['ns'] }),
          ],
        };
      case '/apis/apps/v1':
        return {
          kind: 'APIResourceList',
          groupVersion: 'apps/v1',
          resources: [resource('daemonsets', 'DaemonSet', true, ['get', 'list'], { shortNames: ['ds'] })],
        };
      case '/apis/policy/v1':
        return {
          kind: 'APIResourceList',
          groupVersion: 'policy/v1',
          resources: [
            resource('poddisruptionbudgets', 'PodDisruptionBudget', true, ['get', 'list'], {
              shortNames: ['pdb'],
            }),
          ],
        };
      default:
        return undefined;
    }
  }

  function route(
    method: string,
    path: string,
    query: Record<string, string>,
    contentType: string | undefined,
    body: unknown,
  ) {
    let match: RegExpExecArray | null;
    if ((match = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path))) {
      const name = match[1]!;
      if (method === 'GET') return { status: 200, body: requireNode(name) };
      if (method === 'PATCH')
        return { status: 200, body: patchNode(name, contentType, body, isDryRun(query)) };
      throw new HttpError(
        405,
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      );
    }
    if (method === 'GET') {
      const document = discovery(path);
      if (document) return { status: 200, body: document };
    }
    if (path === '/api/v1/nodes' && method === 'GET') {
      const labels = selectorOf(query);
      return {
        status: 200,
        body: page(
          'NodeList',
          [...nodes.values()].filter((node) => matchesLabelSelector(labels, node.metadata.labels)),
          query,
        ),
      };
    }
    if (path === '/api/v1/pods' && method === 'GET') return { status: 200, body: listPods(query) };
    if ((match = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path)) && method === 'GET') {
      return { status: 200, body: listPods(query, match[1]) };
    }
    if (
      (match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/eviction$/.exec(path)) &&
      method === 'POST'
    ) {
      return { status: 201, body: evict(match[1]!, match[2]!, contentType, body, query) };
    }
    if (
      (match = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/daemonsets\/([^/]+)$/.exec(path)) &&
      method === 'GET'
    ) {
      if (!daemonSets.has(`${match[1]}/${match[2]}`)) {
        throw new HttpError(404, 'NotFound', `daemonsets.apps "${match[2]}" not found`, {
          name: match[2],
          group: 'apps',
          kind: 'daemonsets',
        });
      }
      return {
        status: 200,
        body: {
          apiVersion: 'apps/v1',
          kind: 'DaemonSet',
          metadata: { name: match[2], namespace: match[1], uid: randomUUID() },
        },
      };
    }
    if ((match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path)) && method === 'DELETE') {
      return { status: 200, body: deletePodRequest(match[1]!, match[2]!, query, body) };
    }
    if ((match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path)) && method === 'GET') {
      const pod = readPod(`${match[1]}/${match[2]}`);
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
      at: clockNow(),
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

  const listener = (request: IncomingMessage, response: ServerResponse) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify(
          statusBody(500, 'InternalError', error instanceof Error ? error.message : String(error)),
        ),
      );
    });
  };
  const certificate = options.tls
    ? await generateCertificate([{ name: 'commonName', value: '127.0.0.1' }], {
        keySize: 2048,
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
      })
    : undefined;
  const server = certificate
    ? createHttpsServer({ key: certificate.private, cert: certificate.cert }, listener)
    : createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `${certificate ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = await mkdtemp(join(tmpdir(), 'nodebatch-fake-kube-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  // JSON is YAML, so client-node and kubectl read this as any kubeconfig.
  await writeFile(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'fake',
          cluster: certificate
            ? { server: url, 'certificate-authority-data': Buffer.from(certificate.cert).toString('base64') }
            : // client-node refuses plain http unless TLS verification is explicitly off.
              { server: url, 'insecure-skip-tls-verify': true },
        },
      ],
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
    kubeConfig() {
      const config = new KubeConfig();
      config.loadFromFile(kubeconfigPath);
      return config;
    },
    addNode,
    removeNode: (name) => void nodes.delete(name),
    addPod,
    deletePod: (key) => void finishDeletion(key),
    blockEviction(pod, times, budget) {
      blockedEvictions.set(pod, {
        times: times === 'forever' ? Infinity : times,
        budget: budget ?? `${pod.split('/')[1] ?? pod}-pdb`,
      });
    },
    addDisruptionBudget(budget) {
      budgets.push({ ...budget, refusals: budget.refusals === 'forever' ? Infinity : budget.refusals });
    },
    terminateNamespace(namespace, terminateOptions) {
      terminatingNamespaces.add(namespace);
      if (terminateOptions?.markPodsDeleted ?? true) {
        for (const [key, pod] of pods)
          if (pod.metadata.namespace === namespace) startDeletion(key, undefined);
      }
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

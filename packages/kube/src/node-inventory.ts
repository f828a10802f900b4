import { CoreV1Api, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import { cordonReasonOf } from './cordon-reason.js';
import { InvalidNodeInputError } from './errors.js';
import { toKubeOperationError } from './kube-api-error.js';
import type { KubernetesApiCall } from './kubernetes-api-calls.js';
import { LabelSelectorSyntaxError, matchesLabelSelector, parseLabelSelector } from './label-selector.js';
import type { CordonReason, Taint } from './node-operator.js';
import type { SimulatedCluster } from './simulated-cluster.js';

/** One node as the inventory shows it. */
export interface NodeSummary {
  name: string;
  /** The Ready condition's status: 'True', 'False' or 'Unknown'. */
  ready: 'True' | 'False' | 'Unknown';
  schedulable: boolean;
  /** From `node-role.kubernetes.io/<role>` labels. */
  roles: string[];
  labels: Record<string, string>;
  taints: Taint[];
  /** Pods on the node that have not finished. */
  podCount: number;
  /** Who cordoned it, when and why, when nodebatch cordoned it with a reason. */
  cordonReason?: CordonReason;
}

export const NODE_STATUS_FILTERS = ['ready', 'notready', 'cordoned', 'schedulable'] as const;
export type NodeStatusFilter = (typeof NODE_STATUS_FILTERS)[number];

export interface NodeListQuery {
  /** Label selector, passed to the API server. */
  labelSelector?: string;
  status?: NodeStatusFilter;
  /** Nodes whose name contains this text. */
  name?: string;
  /** Page size. Default 100. */
  limit?: number;
  /** The `continue` of the previous page. */
  continue?: string;
}

export interface NodeListPage {
  /** The cluster's name, as the configuration calls it. */
  cluster: string;
  /** Whether this is the simulated cluster (never a surprise). */
  simulated: boolean;
  items: NodeSummary[];
  /** Matching nodes in all pages. */
  total: number;
  /** Give it back as `continue` for the next page; absent on the last page. */
  continue?: string;
}

/** Read-only view of a cluster's nodes, for the gateway. */
export interface NodeInventory {
  readonly cluster: string;
  readonly simulated: boolean;
  listNodes(query?: NodeListQuery): Promise<NodeListPage>;
  /** Names of the nodes a label selector matches, sorted. InvalidNodeInputError on a bad selector. */
  resolveSelector(selector: string): Promise<string[]>;
  /** The taints of the named nodes, by name; a node the cluster does not have is absent. */
  nodeTaints(names: readonly string[]): Promise<Map<string, Taint[]>>;
}

/** The requests KubernetesNodeInventory makes; the gateway's read-only ClusterRole grants exactly these. */
export const GATEWAY_KUBERNETES_API_CALLS: readonly KubernetesApiCall[] = [
  { apiGroup: '', resource: 'nodes', verb: 'list' },
  // pod counts per node (fieldSelector spec.nodeName=...)
  { apiGroup: '', resource: 'pods', verb: 'list' },
];

const ROLE_PREFIX = 'node-role.kubernetes.io/';

function checkedSelector(selector: string, path: string) {
  try {
    return parseLabelSelector(selector);
  } catch (error) {
    if (error instanceof LabelSelectorSyntaxError) {
      throw new InvalidNodeInputError([{ path, message: error.message }]);
    }
    throw error;
  }
}

/** Filters, sorts and pages summaries (the name and status filters are not API server filters). */
function pageOf(
  all: NodeSummary[],
  query: NodeListQuery,
): { items: NodeSummary[]; total: number; continue?: string } {
  const matching = all
    .filter((node) => !query.name || node.name.includes(query.name))
    .filter((node) => {
      switch (query.status) {
        case undefined:
          return true;
        case 'ready':
          return node.ready === 'True';
        case 'notready':
          return node.ready !== 'True';
        case 'cordoned':
          return !node.schedulable;
        case 'schedulable':
          return node.schedulable;
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const start = query.continue ? Number.parseInt(query.continue, 10) : 0;
  if (!Number.isInteger(start) || start < 0) {
    throw new InvalidNodeInputError([{ path: 'continue', message: 'not a continue token of this listing' }]);
  }
  const limit = query.limit ?? 100;
  const end = start + limit;
  return {
    items: matching.slice(start, end),
    total: matching.length,
    ...(end < matching.length ? { continue: String(end) } : {}),
  };
}

function summarize(node: V1Node, podCount: number): NodeSummary {
  const labels = node.metadata?.labels ?? {};
  const ready = node.status?.conditions?.find((condition) => condition.type === 'Ready')?.status;
  const reason = cordonReasonOf(node.metadata?.annotations);
  return {
    name: node.metadata?.name ?? '',
    ready: ready === 'True' || ready === 'False' ? ready : 'Unknown',
    schedulable: node.spec?.unschedulable !== true,
    roles: Object.keys(labels)
      .filter((key) => key.startsWith(ROLE_PREFIX))
      .map((key) => key.slice(ROLE_PREFIX.length)),
    labels,
    taints: (node.spec?.taints ?? []).map((taint) => ({
      key: taint.key,
      effect: taint.effect as Taint['effect'],
      ...(taint.value ? { value: taint.value } : {}),
    })),
    podCount,
    ...(reason ? { cordonReason: reason } : {}),
  };
}

/** The inventory of a Kubernetes cluster: lists nodes (paged), counts the pods of the nodes shown. */
export class KubernetesNodeInventory implements NodeInventory {
  readonly simulated = false;
  readonly #api: CoreV1Api;
  readonly #server: string | undefined;

  constructor(
    kubeConfig: KubeConfig,
    readonly cluster = 'default',
  ) {
    this.#api = kubeConfig.makeApiClient(CoreV1Api);
    this.#server = kubeConfig.getCurrentCluster()?.server;
  }

  async #allNodes(labelSelector: string | undefined): Promise<V1Node[]> {
    const nodes: V1Node[] = [];
    let next: string | undefined;
    do {
      const list = await this.#call('listing the nodes', () =>
        this.#api.listNode({
          limit: 500,
          ...(labelSelector ? { labelSelector } : {}),
          ...(next ? { _continue: next } : {}),
        }),
      );
      nodes.push(...list.items);
      next = list.metadata?._continue || undefined;
    } while (next);
    return nodes;
  }

  async #call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw toKubeOperationError(error, {
        operation: 'inventory',
        node: '*',
        what,
        target: 'other',
        ...(this.#server ? { server: this.#server } : {}),
      });
    }
  }

  async listNodes(query: NodeListQuery = {}): Promise<NodeListPage> {
    if (query.labelSelector) checkedSelector(query.labelSelector, 'labelSelector');
    const nodes = await this.#allNodes(query.labelSelector);
    const byName = new Map(nodes.map((node) => [node.metadata?.name ?? '', node]));
    const page = pageOf(
      nodes.map((node) => summarize(node, 0)),
      query,
    );
    const items = await Promise.all(
      page.items.map(async (item) => {
        const pods = await this.#call(`listing the pods of node ${item.name}`, () =>
          this.#api.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${item.name}` }),
        );
        const running = pods.items.filter(
          (pod) => pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed',
        );
        return summarize(byName.get(item.name)!, running.length);
      }),
    );
    return { cluster: this.cluster, simulated: false, ...page, items };
  }

  async resolveSelector(selector: string): Promise<string[]> {
    checkedSelector(selector, 'selector');
    return (await this.#allNodes(selector)).map((node) => node.metadata?.name ?? '').sort();
  }

  async nodeTaints(names: readonly string[]): Promise<Map<string, Taint[]>> {
    const wanted = new Set(names);
    // One listing (paged) rather than a read per node: the role grants list, and a batch may name thousands.
    const nodes = (await this.#allNodes(undefined)).filter((node) => wanted.has(node.metadata?.name ?? ''));
    return new Map(nodes.map((node) => [node.metadata?.name ?? '', summarize(node, 0).taints]));
  }
}

/** The simulated cluster's inventory (the demo): the same shape, `simulated: true`. */
export class SimulatedNodeInventory implements NodeInventory {
  readonly simulated = true;

  readonly #simulation: SimulatedCluster;

  constructor(
    simulation: SimulatedCluster,
    readonly cluster = 'simulated',
  ) {
    this.#simulation = simulation;
  }

  #summaries(): NodeSummary[] {
    return this.#simulation.listNodes().map((name) => {
      const node = this.#simulation.getNode(name)!;
      const reason = cordonReasonOf(node.annotations);
      return {
        name,
        ready: 'True' as const,
        schedulable: !node.unschedulable,
        roles: [],
        labels: node.labels,
        taints: node.taints,
        podCount: node.pods.filter((pod) => pod.phase !== 'Succeeded' && pod.phase !== 'Failed').length,
        ...(reason ? { cordonReason: reason } : {}),
      };
    });
  }

  async listNodes(query: NodeListQuery = {}): Promise<NodeListPage> {
    const selector = checkedSelector(query.labelSelector ?? '', 'labelSelector');
    const nodes = this.#summaries().filter((node) => matchesLabelSelector(selector, node.labels));
    return { cluster: this.cluster, simulated: true, ...pageOf(nodes, query) };
  }

  async resolveSelector(selector: string): Promise<string[]> {
    const requirements = checkedSelector(selector, 'selector');
    return this.#summaries()
      .filter((node) => matchesLabelSelector(requirements, node.labels))
      .map((node) => node.name)
      .sort();
  }

  async nodeTaints(names: readonly string[]): Promise<Map<string, Taint[]>> {
    const taints = new Map<string, Taint[]>();
    for (const name of names) {
      const node = this.#simulation.getNode(name);
      if (node) taints.set(name, node.taints);
    }
    return taints;
  }
}

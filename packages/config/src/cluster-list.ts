import { z } from 'zod';
import {
  CLUSTER_MODES,
  type ClusterConfig,
  type ClusterMode,
  type NamedClusterConfig,
} from './nodebatch-config.js';
import type { ValueSchema } from './value-schemas.js';

/**
 * A cluster name: a DNS label, because it is part of the cluster's queue name
 * and appears in URLs (`?cluster=`) and task records.
 */
const CLUSTER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const ENTRY_KEYS = ['name', 'kubeconfig', 'context', 'mode', 'default'] as const;

const entrySchema = z
  .object({
    name: z
      .string()
      .trim()
      .regex(CLUSTER_NAME, 'name: expected a DNS label (lower-case letters, digits and "-", at most 63)'),
    kubeconfig: z.string().trim().min(1, 'kubeconfig: expected a path to a kubeconfig file').optional(),
    context: z.string().trim().min(1, 'context: expected a kubeconfig context name').optional(),
    mode: z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.enum(CLUSTER_MODES, { error: `mode: expected one of ${CLUSTER_MODES.join(', ')}` }))
      .optional(),
    default: z
      .union([z.boolean(), z.enum(['true', 'false']).transform((word) => word === 'true')])
      .optional(),
  })
  .strict();

type Entry = z.infer<typeof entrySchema>;

/**
 * The environment form: entries separated by `,`, each a name followed by
 * `;key=value` attributes and an optional bare `;default`, e.g.
 * `prod;kubeconfig=/etc/kube/prod.yaml;default,staging;context=staging`.
 * A value starting with `[` is read as JSON (the file's list, inline).
 */
const fromText = z.string().transform((value, ctx): unknown => {
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
      return z.NEVER;
    }
  }
  return trimmed
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const [name = '', ...attributes] = part.split(';').map((piece) => piece.trim());
      const entry: Record<string, unknown> = { name };
      for (const attribute of attributes.filter((piece) => piece.length > 0)) {
        const at = attribute.indexOf('=');
        if (at < 0) entry[attribute] = attribute === 'default' ? true : '';
        else entry[attribute.slice(0, at).trim()] = attribute.slice(at + 1).trim();
      }
      return entry;
    });
});

const listSchema = z
  .union([z.array(z.unknown()), fromText])
  .pipe(z.array(entrySchema).min(1, 'the list is empty'))
  .superRefine((entries: Entry[], ctx) => {
    const seen = new Set<string>();
    entries.forEach((entry, index) => {
      if (seen.has(entry.name)) {
        ctx.addIssue({ code: 'custom', path: [index], message: `name: "${entry.name}" is listed twice` });
      }
      seen.add(entry.name);
      if (entry.mode === 'simulated' && (entry.kubeconfig !== undefined || entry.context !== undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [index],
          message: 'a simulated cluster takes no kubeconfig or context',
        });
      }
    });
    const defaults = entries.filter((entry) => entry.default === true).map((entry) => entry.name);
    if (defaults.length > 1) {
      ctx.addIssue({
        code: 'custom',
        message: `only one cluster may be the default, not ${defaults.join(', ')}`,
      });
    }
  })
  .transform((entries: Entry[]): NamedClusterConfig[] =>
    entries.map((entry) => ({
      name: entry.name,
      mode: entry.mode ?? 'kubernetes',
      ...(entry.kubeconfig === undefined ? {} : { kubeconfig: entry.kubeconfig }),
      ...(entry.context === undefined ? {} : { context: entry.context }),
      default: entry.default === true,
    })),
  );

/** `cluster.clusters`: the named clusters batches may run on. */
export function clusterList(): ValueSchema<NamedClusterConfig[]> {
  return {
    schema: listSchema,
    expected: `a list of clusters, each with a name and optionally ${ENTRY_KEYS.slice(1).join(', ')} (env form: name;kubeconfig=PATH;context=NAME;default,name2;…)`,
    explain: (error) => {
      const issue = error.issues[0];
      if (!issue) return 'invalid';
      const [index, key] = issue.path;
      const where = typeof index === 'number' ? `entry ${index + 1}` : '';
      // An unknown key is reported by zod without the key in the path.
      const unknownKeys =
        issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.join(', ')}` : undefined;
      const message =
        unknownKeys ??
        (typeof key === 'string' && !issue.message.startsWith(`${key}:`)
          ? `${key}: ${issue.message}`
          : issue.message);
      return where ? `${where}: ${message}` : message;
    },
  };
}

/** One cluster batches may run on, with everything needed to reach it. */
export interface ClusterTarget extends ClusterConfig {
  /** The name batches, the inventory and tasks use. */
  name: string;
  /** A kubeconfig context; absent: the kubeconfig's current one. */
  context?: string;
  /** Whether a batch that names no cluster runs here. */
  isDefault: boolean;
}

/** The name of the one cluster of a configuration without `cluster.clusters`. */
export const SINGLE_CLUSTER_NAME = 'default';

/**
 * The clusters of the configuration: each entry of `cluster.clusters`, with
 * the simulation settings and KUBECONFIG of the `cluster` section filling what
 * an entry leaves out; without a list, one cluster named `default` from the
 * `cluster` section. With several and none marked default, none is the default:
 * every batch must then name its cluster.
 */
export function clusterTargets(cluster: ClusterConfig): ClusterTarget[] {
  const { clusters, ...shared } = cluster;
  if (!clusters || clusters.length === 0) {
    return [{ ...shared, name: SINGLE_CLUSTER_NAME, isDefault: true }];
  }
  return clusters.map((entry) => {
    const mode: ClusterMode = entry.mode;
    const kubeconfig = entry.kubeconfig ?? shared.kubeconfig;
    return {
      mode,
      simNodes: shared.simNodes,
      simLatencyMs: shared.simLatencyMs,
      simFailureRate: shared.simFailureRate,
      ...(kubeconfig === undefined ? {} : { kubeconfig }),
      ...(entry.context === undefined ? {} : { context: entry.context }),
      name: entry.name,
      isDefault: entry.default || clusters.length === 1,
    };
  });
}

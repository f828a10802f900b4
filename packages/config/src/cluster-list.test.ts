import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterTargets } from './cluster-list.js';
import { ConfigError } from './config-error.js';
import { loadConfig } from './load-config.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function load(env: Record<string, string>, configYaml?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'nb-clusters-'));
  dirs.push(dir);
  if (configYaml !== undefined) writeFileSync(join(dir, 'config.yaml'), configYaml);
  return loadConfig({ env, cwd: dir });
}

function messageOf(env: Record<string, string>, configYaml?: string): string {
  try {
    load(env, configYaml);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('cluster.clusters', () => {
  it('is one cluster named default, from the cluster section, when no list is given', () => {
    const { config } = load({ KUBECONFIG: '/etc/kube/config' });
    expect(config.cluster.clusters).toBeUndefined();
    expect(clusterTargets(config.cluster)).toEqual([
      {
        name: 'default',
        mode: 'kubernetes',
        kubeconfig: '/etc/kube/config',
        simNodes: 50,
        simLatencyMs: 0,
        simFailureRate: 0,
        isDefault: true,
      },
    ]);
  });

  it('reads the list from the file, each entry with its kubeconfig, context, mode and default flag', () => {
    const { config, sources } = load(
      { KUBECONFIG: '/etc/kube/shared' },
      [
        'cluster:',
        '  clusters:',
        '    - name: prod',
        '      kubeconfig: /etc/kube/prod.yaml',
        '      default: true',
        '    - name: staging',
        '      context: staging-admin',
        '    - name: lab',
        '      mode: simulated',
      ].join('\n'),
    );
    expect(sources['cluster.clusters']).toBe('file:config.yaml#cluster.clusters');
    const targets = clusterTargets(config.cluster);
    expect(
      targets.map(({ name, mode, kubeconfig, context, isDefault }) => ({
        name,
        mode,
        kubeconfig,
        context,
        isDefault,
      })),
    ).toEqual([
      {
        name: 'prod',
        mode: 'kubernetes',
        kubeconfig: '/etc/kube/prod.yaml',
        context: undefined,
        isDefault: true,
      },
      {
        name: 'staging',
        mode: 'kubernetes',
        kubeconfig: '/etc/kube/shared',
        context: 'staging-admin',
        isDefault: false,
      },
      {
        name: 'lab',
        mode: 'simulated',
        kubeconfig: '/etc/kube/shared',
        context: undefined,
        isDefault: false,
      },
    ]);
  });

  it('reads the environment form, and it outranks the file', () => {
    const { config, sources } = load(
      { NODEBATCH_CLUSTERS: 'east;kubeconfig=/k/east;context=east-ctx;default, west;context=west' },
      'cluster:\n  clusters:\n    - name: prod\n',
    );
    expect(sources['cluster.clusters']).toBe('env:NODEBATCH_CLUSTERS');
    expect(config.cluster.clusters).toEqual([
      { name: 'east', mode: 'kubernetes', kubeconfig: '/k/east', context: 'east-ctx', default: true },
      { name: 'west', mode: 'kubernetes', context: 'west', default: false },
    ]);
    const json = load({ NODEBATCH_CLUSTERS: '[{"name":"lab","mode":"simulated"}]' });
    expect(clusterTargets(json.config.cluster)).toMatchObject([
      { name: 'lab', mode: 'simulated', isDefault: true },
    ]);
  });

  it('refuses NODEBATCH_CLUSTER=simulated beside a cluster list rather than guess which cluster to simulate', () => {
    expect(messageOf({ NODEBATCH_CLUSTER: 'simulated', NODEBATCH_CLUSTERS: 'prod;context=prod' })).toBe(
      'invalid configuration: cluster.mode="simulated" (from env NODEBATCH_CLUSTER) applies only without cluster.clusters (from env NODEBATCH_CLUSTERS); give the listed clusters that should be simulated mode: simulated instead',
    );
    expect(
      load({ NODEBATCH_CLUSTER: 'kubernetes', NODEBATCH_CLUSTERS: 'prod' }).config.cluster.clusters,
    ).toHaveLength(1);
  });

  it('has no default among several unless one is marked', () => {
    const { config } = load({ NODEBATCH_CLUSTERS: 'a;context=a,b;context=b' });
    expect(clusterTargets(config.cluster).map((target) => target.isDefault)).toEqual([false, false]);
  });

  it('refuses invalid lists with an error naming the variable or file key, the entry and what is wrong', () => {
    expect(messageOf({ NODEBATCH_CLUSTERS: 'a;context=a,a;context=b' })).toBe(
      'invalid configuration: NODEBATCH_CLUSTERS (from env NODEBATCH_CLUSTERS): entry 2: name: "a" is listed twice; expected a list of clusters, each with a name and optionally kubeconfig, context, mode, default (env form: name;kubeconfig=PATH;context=NAME;default,name2;…)',
    );
    expect(messageOf({ NODEBATCH_CLUSTERS: 'a;default,b;default' })).toContain(
      'NODEBATCH_CLUSTERS (from env NODEBATCH_CLUSTERS): only one cluster may be the default, not a, b;',
    );
    expect(messageOf({ NODEBATCH_CLUSTERS: 'Prod_1' })).toContain(
      'entry 1: name: expected a DNS label (lower-case letters, digits and "-", at most 63)',
    );
    expect(messageOf({ NODEBATCH_CLUSTERS: 'a;mode=fake' })).toContain(
      'entry 1: mode: expected one of kubernetes, simulated',
    );
    expect(messageOf({ NODEBATCH_CLUSTERS: 'a;mode=simulated;context=x' })).toContain(
      'entry 1: a simulated cluster takes no kubeconfig or context',
    );
    expect(messageOf({}, 'cluster:\n  clusters:\n    - name: prod\n      kubconfig: /k\n')).toContain(
      'cluster.clusters (from file config.yaml#cluster.clusters line 3): entry 1: unknown key kubconfig',
    );
  });
});

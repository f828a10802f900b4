import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACCEPTED_ENV_VARS } from '@nodebatch/config';
import { GATEWAY_KUBERNETES_API_CALLS, KUBERNETES_API_CALLS } from '@nodebatch/kube';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { deployDir, loadManifests, type Manifest } from './manifests.js';

/** The official OpenAPI schema of each kind we ship, through kubernetes-models' validators. */
const models: Record<string, { validate(): void } & (new (data: object) => { validate(): void })> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
} as never;

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string> };
}

interface WorkloadSpec {
  replicas: number;
  selector: { matchLabels: Record<string, string> };
  template: {
    metadata: { labels: Record<string, string> };
    spec: {
      containers: Container[];
      serviceAccountName?: string;
      volumes?: { secret?: { items: { key: string }[] } }[];
    };
  };
}

const manifests = loadManifests();
const byKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const spec = (m: Manifest) => m.spec as WorkloadSpec;
const selectorOf = (m: Manifest) => (m.spec as { selector: Record<string, string> }).selector;
const deployments = byKind('Deployment');
const containersOf = (d: Manifest): Container[] => spec(d).template.spec.containers;
const deployment = (name: string) => {
  const found = deployments.find((d) => d.metadata.name === name);
  if (!found) throw new Error(`no Deployment ${name} in deploy/kubernetes`);
  return found;
};

describe('deploy/kubernetes manifests', () => {
  it('are each valid for their kind', () => {
    expect(manifests.length).toBeGreaterThan(8);
    for (const manifest of manifests) {
      const Model = models[`${manifest.apiVersion}/${manifest.kind}`];
      expect(Model, `${manifest.file}: unexpected ${manifest.apiVersion} ${manifest.kind}`).toBeDefined();
      const { file: _file, ...data } = manifest;
      expect(() => new Model!(data).validate(), `${manifest.file}: ${manifest.kind}`).not.toThrow();
    }
  });

  it('are all listed in the kustomization', () => {
    const kustomization = parse(readFileSync(join(deployDir, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
    };
    expect(new Set(kustomization.resources)).toEqual(new Set(manifests.map((m) => m.file)));
  });

  it('run several replicas of the worker and the gateway, each protected by a PodDisruptionBudget', () => {
    for (const name of ['nodebatch-worker', 'nodebatch-gateway']) {
      const d = deployment(name);
      expect(spec(d).replicas).toBeGreaterThanOrEqual(2);
      const labels = spec(d).template.metadata.labels;
      expect(labels).toMatchObject(spec(d).selector.matchLabels);
      const pdb = byKind('PodDisruptionBudget').find((p) =>
        Object.entries(spec(p).selector.matchLabels).every(([k, v]) => labels[k] === v),
      );
      expect(pdb, `PodDisruptionBudget for ${name}`).toBeDefined();
      for (const container of containersOf(d)) {
        expect(container.resources?.requests, `${name} resource requests`).toMatchObject({
          cpu: expect.any(String),
          memory: expect.any(String),
        });
      }
    }
  });

  it('start the commands the CLI has and probe the gateway on /healthz and /readyz', () => {
    expect(containersOf(deployment('nodebatch-worker'))[0]?.args).toEqual(['worker']);
    const gateway = containersOf(deployment('nodebatch-gateway'))[0]!;
    expect(gateway.args).toEqual(['gateway']);
    expect(gateway.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(gateway.readinessProbe?.httpGet?.path).toBe('/readyz');
    const port = gateway.env?.find((e) => e.name === 'PORT')?.value;
    expect(gateway.ports?.map((p) => String(p.containerPort))).toContain(port);
    const service = byKind('Service').find((s) => s.metadata.name === 'nodebatch-gateway')!;
    expect(spec(deployment('nodebatch-gateway')).template.metadata.labels).toMatchObject(selectorOf(service));
  });

  it('probe the worker on /healthz and /readyz, on the port WORKER_HEALTH_PORT opens', () => {
    const worker = containersOf(deployment('nodebatch-worker'))[0]!;
    expect(worker.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(worker.readinessProbe?.httpGet?.path).toBe('/readyz');
    const healthPort = worker.env?.find((e) => e.name === 'WORKER_HEALTH_PORT')?.value;
    expect(healthPort).toBeDefined();
    for (const probe of [worker.livenessProbe, worker.readinessProbe]) {
      const port = probe?.httpGet?.port;
      const containerPort =
        typeof port === 'number' ? port : worker.ports?.find((p) => p.name === port)?.containerPort;
      expect(String(containerPort)).toBe(healthPort);
    }
  });

  it('set only environment variables the configuration accepts, the database ones by their DB_* names', () => {
    const configMaps = new Map(
      byKind('ConfigMap').map((c) => [c.metadata.name, c.data as Record<string, string>]),
    );
    const accepted = new Set<string>(ACCEPTED_ENV_VARS);
    const set: string[] = [];
    for (const d of deployments) {
      for (const container of containersOf(d)) {
        for (const e of container.env ?? []) set.push(e.name);
        for (const source of container.envFrom ?? []) {
          const data = configMaps.get(source.configMapRef?.name ?? '');
          expect(
            data,
            `ConfigMap ${source.configMapRef?.name} referenced by ${d.metadata.name}`,
          ).toBeDefined();
          set.push(...Object.keys(data ?? {}));
        }
      }
    }
    expect(set.filter((name) => !accepted.has(name))).toEqual([]);
    expect(set.filter((name) => name.startsWith('DATABASE_'))).toEqual([]);
    expect(set).toContain('DB_HOST');
  });

  it('keep secrets out of the ConfigMap and take the password from the Secret', () => {
    for (const configMap of byKind('ConfigMap')) {
      expect(Object.keys(configMap.data as object).filter((k) => /PASSWORD|SECRET|TOKEN/.test(k))).toEqual(
        [],
      );
    }
    const secretKeys = new Set(Object.keys(byKind('Secret')[0]?.stringData as object));
    for (const d of deployments) {
      const container = containersOf(d)[0]!;
      expect(container.env?.find((e) => e.name === 'DB_PASSWORD_FILE')?.value).toMatch(
        /^\/var\/run\/secrets\//,
      );
      const volumes = spec(d).template.spec.volumes ?? [];
      for (const item of volumes.flatMap((v) => v.secret?.items ?? []))
        expect(secretKeys).toContain(item.key);
    }
  });

  it('meet the restricted Pod Security profile', () => {
    for (const d of deployments) {
      const pod = spec(d).template.spec as unknown as {
        securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
        containers: { securityContext?: Record<string, unknown> }[];
      };
      expect(pod.securityContext, d.metadata.name).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      for (const container of pod.containers) {
        expect(container.securityContext, d.metadata.name).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
      }
    }
  });

  it('pass every secret as a mounted file (*_FILE), none as an environment value', () => {
    const secretKeys = Object.keys(byKind('Secret')[0]?.stringData as object);
    for (const d of deployments) {
      const container = containersOf(d)[0]!;
      expect(
        (container.env ?? []).filter(
          (e) => e.valueFrom !== undefined || /PASSWORD$|SECRET$|TOKEN$/.test(e.name),
        ),
        d.metadata.name,
      ).toEqual([]);
      const mounted = new Set(
        (spec(d).template.spec.volumes ?? []).flatMap((v) => v.secret?.items ?? []).map((item) => item.key),
      );
      for (const e of (container.env ?? []).filter((e) => e.name.endsWith('_FILE'))) {
        expect(e.value).toMatch(/^\/var\/run\/secrets\/nodebatch\//);
        expect(mounted).toContain(e.value!.split('/').at(-1));
      }
    }
    const gatewayEnv = containersOf(deployment('nodebatch-gateway'))[0]!.env!.map((e) => e.name);
    expect(gatewayEnv).toEqual(expect.arrayContaining(['AUTH_JWT_SECRET_FILE', 'REDIS_PASSWORD_FILE']));
    expect(secretKeys).toContain('auth-jwt-secret');
    // Workers sign hints and gateways verify them: one key, from one Secret entry, on both.
    const hintKeyFiles = deployments.map(
      (d) => containersOf(d)[0]!.env?.find((e) => e.name === 'PROGRESS_HINT_KEY_FILE')?.value,
    );
    expect(hintKeyFiles).toEqual(deployments.map(() => '/var/run/secrets/nodebatch/progress-hint-key'));
    expect(secretKeys).toContain('progress-hint-key');
  });

  it('let only the gateway be reached, on its public port, with metrics on an internal port', () => {
    const policies = byKind('NetworkPolicy') as unknown as {
      spec: {
        podSelector: { matchLabels?: Record<string, string> };
        policyTypes: string[];
        ingress?: { from?: unknown[]; ports?: { port: string | number }[] }[];
      };
    }[];
    const denyAll = policies.find(
      (p) => Object.keys(p.spec.podSelector.matchLabels ?? {}).length === 0 && p.spec.ingress === undefined,
    );
    expect(denyAll?.spec.policyTypes).toContain('Ingress');
    const allowing = policies.filter((p) => p.spec.ingress !== undefined);
    expect(allowing.map((p) => p.spec.podSelector.matchLabels)).toEqual([
      { 'app.kubernetes.io/name': 'nodebatch-gateway' },
    ]);
    const open = allowing[0]!.spec.ingress!.filter((rule) => rule.from === undefined);
    expect(open.flatMap((rule) => rule.ports!.map((p) => p.port))).toEqual(['http']);
    const gateway = containersOf(deployment('nodebatch-gateway'))[0]!;
    const metricsPort = gateway.env?.find((e) => e.name === 'METRICS_PORT')?.value;
    expect(gateway.ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(Number(metricsPort));
    const service = byKind('Service').find((s) => s.metadata.name === 'nodebatch-gateway')!;
    expect((service.spec as { ports: { targetPort: string }[] }).ports.map((p) => p.targetPort)).toEqual([
      'http',
    ]);
  });

  it('grant the worker exactly the Kubernetes API calls the node operator makes', () => {
    const role = byKind('ClusterRole').find((r) => r.metadata.name === 'nodebatch-worker')!;
    const rules = role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const granted = new Set(
      rules.flatMap((rule) =>
        rule.apiGroups.flatMap((group) =>
          rule.resources.flatMap((resource) => rule.verbs.map((verb) => `${group}|${resource}|${verb}`)),
        ),
      ),
    );
    const used = new Set(
      KUBERNETES_API_CALLS.map(
        (call) =>
          `${call.apiGroup}|${call.resource}${call.subresource ? `/${call.subresource}` : ''}|${call.verb}`,
      ),
    );
    expect(granted).toEqual(used);
    const binding = byKind('ClusterRoleBinding').find((b) => b.metadata.name === 'nodebatch-worker')!;
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'nodebatch-worker', namespace: 'nodebatch' },
    ]);
    expect(spec(deployment('nodebatch-worker')).template['spec']['serviceAccountName']).toBe(
      'nodebatch-worker',
    );
  });

  it('grant the gateway read-only access: exactly the calls of the node inventory', () => {
    const role = byKind('ClusterRole').find((r) => r.metadata.name === 'nodebatch-gateway')!;
    const rules = role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const granted = new Set(
      rules.flatMap((rule) =>
        rule.apiGroups.flatMap((group) =>
          rule.resources.flatMap((resource) => rule.verbs.map((verb) => `${group}|${resource}|${verb}`)),
        ),
      ),
    );
    expect(granted).toEqual(
      new Set(GATEWAY_KUBERNETES_API_CALLS.map((call) => `${call.apiGroup}|${call.resource}|${call.verb}`)),
    );
    expect([...granted].every((entry) => /\|(get|list)$/.test(entry))).toBe(true);
    const binding = byKind('ClusterRoleBinding').find((b) => b.metadata.name === 'nodebatch-gateway')!;
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'nodebatch-gateway', namespace: 'nodebatch' },
    ]);
  });
});

describe('the Dockerfile', () => {
  const dockerfile = readFileSync(join(deployDir, '..', '..', 'Dockerfile'), 'utf8');
  const pinned = (
    JSON.parse(readFileSync(join(deployDir, '..', '..', 'package.json'), 'utf8')) as {
      nodeRuntime: { version: string };
    }
  ).nodeRuntime.version;

  it('builds and runs on the major of the pinned Node.js LTS, on the official Debian slim image', () => {
    const bases = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1]);
    expect(bases.length).toBeGreaterThanOrEqual(2);
    const major = pinned.split('.')[0];
    for (const base of bases) expect(base).toMatch(new RegExp(`^node:${major}(\\.\\d+){0,2}-bookworm-slim$`));
    expect(major).toBe('24');
  });

  it('builds with the pinned Node.js through the bootstrap, not the image’s own', () => {
    const runs = dockerfile.match(/^RUN[\s\S]*?[^\\]$/m)?.[0] ?? '';
    expect(runs).toMatch(/node scripts\/bootstrap\.mjs pnpm exec turbo run build/);
    expect(runs).not.toMatch(/\.tools\/node_modules\/\.bin\/pnpm/);
  });
});

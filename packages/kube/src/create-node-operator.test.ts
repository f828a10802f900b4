import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeOperator, type ClusterSettings } from './create-node-operator.js';
import { ClusterNotConfiguredError } from './errors.js';
import { KubernetesNodeOperator } from './kubernetes-node-operator.js';
import { SimulatedCluster } from './simulated-cluster.js';
import { startFakeKubeApi, type FakeKubeApi } from './testing/index.js';

let fake: FakeKubeApi;
let emptyDir: string;
const lines: string[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  }),
);
const base: ClusterSettings = { mode: 'kubernetes', simNodes: 3, simLatencyMs: 0, simFailureRate: 0 };

beforeAll(async () => {
  fake = await startFakeKubeApi({ nodes: ['node-1'] });
  emptyDir = await mkdtemp(join(tmpdir(), 'nodebatch-no-cluster-'));
});

afterAll(async () => {
  await fake.close();
  await rm(emptyDir, { recursive: true, force: true });
});

describe('createNodeOperator', () => {
  it('gives the simulated cluster when the mode is simulated', async () => {
    const operator = createNodeOperator({ cluster: { ...base, mode: 'simulated' }, logger });
    expect(operator).toBeInstanceOf(SimulatedCluster);
    expect((operator as SimulatedCluster).listNodes()).toEqual(['sim-node-1', 'sim-node-2', 'sim-node-3']);
    await operator.cordon('sim-node-2');
    expect((operator as SimulatedCluster).getNode('sim-node-2')!.unschedulable).toBe(true);
  });

  it('gives the Kubernetes operator for the configured kubeconfig, and it talks to that server', async () => {
    const operator = createNodeOperator({ cluster: { ...base, kubeconfig: fake.kubeconfigPath }, logger });
    expect(operator).toBeInstanceOf(KubernetesNodeOperator);
    await operator.cordon('node-1');
    expect(fake.requests.map((request) => `${request.method} ${request.path} ${request.status}`)).toEqual([
      'GET /api/v1/nodes/node-1 200',
      'PATCH /api/v1/nodes/node-1 200',
    ]);
    const logged = lines.join('');
    expect(logged).toContain(fake.url);
    expect(logged).not.toMatch(/token/i);
  });

  it('refuses to start without a cluster and says how to configure one', () => {
    expect(() =>
      createNodeOperator({
        cluster: base,
        logger,
        locate: { homeDir: emptyDir, serviceAccountDir: join(emptyDir, 'none'), env: {} },
      }),
    ).toThrow(ClusterNotConfiguredError);
  });
});

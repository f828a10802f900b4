import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNotConfiguredError } from './errors.js';
import { loadKubeConfig } from './load-kube-config.js';

let dir: string;
const emptyHome = () => join(dir, 'empty-home');
const noAccount = () => join(dir, 'no-account');

function kubeconfig(server: string, user: Record<string, unknown> = { token: 'secret-token' }) {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodebatch-kubeconfig-'));
  await mkdir(emptyHome());
  await writeFile(join(dir, 'a.yaml'), kubeconfig('https://a.example:6443'));
  await mkdir(join(dir, 'home', '.kube'), { recursive: true });
  await writeFile(join(dir, 'home', '.kube', 'config'), kubeconfig('https://home.example:6443'));
  await mkdir(join(dir, 'account'));
  await writeFile(join(dir, 'account', 'token'), 'account-token');
  await writeFile(join(dir, 'account', 'ca.crt'), '');
  await writeFile(join(dir, 'broken.yaml'), 'clusters: [ {');
  await writeFile(
    join(dir, 'two.yaml'),
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'east', cluster: { server: 'https://east.example:6443' } },
        { name: 'west', cluster: { server: 'https://west.example:6443' } },
      ],
      users: [{ name: 'u', user: { token: 'secret-token' } }],
      contexts: [
        { name: 'east', context: { cluster: 'east', user: 'u' } },
        { name: 'west', context: { cluster: 'west', user: 'u' } },
      ],
      'current-context': 'east',
    }),
  );
  await writeFile(
    join(dir, 'no-context.yaml'),
    JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] }),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function refusal(run: () => unknown): ClusterNotConfiguredError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ClusterNotConfiguredError);
    return error as ClusterNotConfiguredError;
  }
  throw new Error('expected ClusterNotConfiguredError');
}

describe('loadKubeConfig', () => {
  it('reads KUBECONFIG first', () => {
    const loaded = loadKubeConfig({ kubeconfig: join(dir, 'a.yaml'), homeDir: join(dir, 'home') });
    expect(loaded.server).toBe('https://a.example:6443');
    expect(loaded.source).toBe(`KUBECONFIG=${join(dir, 'a.yaml')}`);
  });

  it('uses the named context of a kubeconfig, and refuses an unknown one naming the contexts it has', () => {
    const two = join(dir, 'two.yaml');
    expect(loadKubeConfig({ kubeconfig: two, homeDir: emptyHome() }).server).toBe(
      'https://east.example:6443',
    );
    const west = loadKubeConfig({ kubeconfig: two, context: 'west', homeDir: emptyHome() });
    expect(west.server).toBe('https://west.example:6443');
    expect(west.source).toBe(`KUBECONFIG=${two} context west`);
    expect(refusal(() => loadKubeConfig({ kubeconfig: two, context: 'north' })).message).toContain(
      `KUBECONFIG=${two} has no context "north" (its contexts: east, west)`,
    );
  });

  it('then ~/.kube/config', () => {
    const loaded = loadKubeConfig({
      homeDir: join(dir, 'home'),
      serviceAccountDir: join(dir, 'account'),
      env: {},
    });
    expect(loaded.server).toBe('https://home.example:6443');
    expect(loaded.source).toContain('~/.kube/config');
  });

  it('then the in-cluster service account', () => {
    const loaded = loadKubeConfig({
      homeDir: emptyHome(),
      serviceAccountDir: join(dir, 'account'),
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '6443' },
    });
    expect(loaded.server).toBe('https://10.96.0.1:6443');
    expect(loaded.source).toBe('in-cluster service account');
    expect(loaded.kubeConfig.getCurrentUser()?.authProvider?.config?.tokenFile).toBe(
      join(dir, 'account', 'token'),
    );
  });

  it('refuses when there is none, naming the three ways and the simulated cluster', () => {
    const error = refusal(() =>
      loadKubeConfig({ homeDir: emptyHome(), serviceAccountDir: noAccount(), env: {} }),
    );
    expect(error.code).toBe('CLUSTER_NOT_CONFIGURED');
    for (const hint of ['KUBECONFIG', '~/.kube/config', 'service account', 'NODEBATCH_CLUSTER=simulated']) {
      expect(error.message).toContain(hint);
    }
    // A token without KUBERNETES_SERVICE_HOST is not a pod: refused too.
    refusal(() => loadKubeConfig({ homeDir: emptyHome(), serviceAccountDir: join(dir, 'account'), env: {} }));
  });

  it('refuses a KUBECONFIG that does not exist, cannot be read or has no current cluster', () => {
    expect(refusal(() => loadKubeConfig({ kubeconfig: join(dir, 'missing.yaml') })).message).toContain(
      join(dir, 'missing.yaml'),
    );
    expect(refusal(() => loadKubeConfig({ kubeconfig: join(dir, 'broken.yaml') })).message).toContain(
      'could not be read',
    );
    expect(refusal(() => loadKubeConfig({ kubeconfig: join(dir, 'no-context.yaml') })).message).toContain(
      'no cluster for its current context',
    );
  });

  it('never repeats credentials of the server URL', async () => {
    await writeFile(join(dir, 'creds.yaml'), kubeconfig('https://admin:hunter2@creds.example:6443'));
    const loaded = loadKubeConfig({ kubeconfig: join(dir, 'creds.yaml') });
    expect(loaded.server).toBe('https://creds.example:6443');
  });
});

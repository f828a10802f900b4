import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { isIPv6 } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterNotConfiguredError } from './errors.js';

export interface LoadKubeConfigOptions {
  /** KUBECONFIG as configured (a path, or several joined by the path delimiter). */
  kubeconfig?: string;
  /** The context to use (one of several clusters in one kubeconfig). Default: the file's current context. */
  context?: string;
  /** Environment for KUBERNETES_SERVICE_HOST/PORT. Default process.env. */
  env?: Record<string, string | undefined>;
  /** Home directory holding .kube/config. Default os.homedir(). */
  homeDir?: string;
  /** Where a pod's service account is mounted. Default /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir?: string;
}

export interface LoadedKubeConfig {
  kubeConfig: KubeConfig;
  /** Where it came from, for logs and doctor: `KUBECONFIG=/path`, `~/.kube/config (/path)` or `in-cluster service account`. */
  source: string;
  /** The API server URL (no credentials). */
  server: string;
}

const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Finds the cluster the way kubectl and client-node's loadFromDefault do — KUBECONFIG, then
 * ~/.kube/config, then the in-cluster service account — but refuses instead of silently falling
 * back to http://localhost:8080 when there is none, and takes KUBECONFIG from our configuration.
 */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): LoadedKubeConfig {
  const env = options.env ?? process.env;
  const kubeConfig = new KubeConfig();
  let source: string;

  const paths = (options.kubeconfig ?? '').split(delimiter).filter((path) => path.trim().length > 0);
  const home = options.homeDir ?? safeHomedir();
  const homeConfig = home ? join(home, '.kube', 'config') : undefined;
  const accountDir = options.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR;

  if (paths.length > 0) {
    const missing = paths.filter((path) => !existsSync(path));
    if (missing.length > 0)
      throw new ClusterNotConfiguredError(`KUBECONFIG names ${missing.join(', ')}, which does not exist`);
    readFiles(kubeConfig, paths);
    source = `KUBECONFIG=${paths.join(delimiter)}`;
  } else if (homeConfig && existsSync(homeConfig)) {
    readFiles(kubeConfig, [homeConfig]);
    source = `~/.kube/config (${homeConfig})`;
  } else if (existsSync(join(accountDir, 'token')) && env.KUBERNETES_SERVICE_HOST) {
    loadInCluster(kubeConfig, accountDir, env);
    source = 'in-cluster service account';
  } else {
    throw new ClusterNotConfiguredError(
      `KUBECONFIG is not set, ${homeConfig ?? '~/.kube/config'} does not exist and there is no service account ` +
        `token at ${join(accountDir, 'token')} with KUBERNETES_SERVICE_HOST set`,
    );
  }

  if (options.context !== undefined) {
    if (!kubeConfig.getContextObject(options.context)) {
      const known = kubeConfig.getContexts().map((context) => context.name);
      throw new ClusterNotConfiguredError(
        `${source} has no context "${options.context}" (its contexts: ${known.join(', ') || '(none)'})`,
      );
    }
    kubeConfig.setCurrentContext(options.context);
    source = `${source} context ${options.context}`;
  }
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) {
    throw new ClusterNotConfiguredError(
      `${source} has no cluster for its current context "${kubeConfig.getCurrentContext() || '(none)'}"`,
    );
  }
  return { kubeConfig, source, server: withoutCredentials(server) };
}

/** The server URL for logs: a user:password part, however unusual, never leaves. */
function withoutCredentials(server: string): string {
  try {
    const url = new URL(server);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return server.replace(/\/\/[^/@]*@/, '//');
  }
}

function readFiles(kubeConfig: KubeConfig, paths: readonly string[]): void {
  paths.forEach((path, index) => {
    try {
      if (index === 0) kubeConfig.loadFromFile(path);
      else {
        const next = new KubeConfig();
        next.loadFromFile(path);
        kubeConfig.mergeConfig(next);
      }
    } catch (error) {
      throw new ClusterNotConfiguredError(
        `the kubeconfig ${path} could not be read: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  });
}

/** client-node's loadFromCluster, with the environment and mount point injectable for tests. */
function loadInCluster(
  kubeConfig: KubeConfig,
  accountDir: string,
  env: Record<string, string | undefined>,
): void {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  kubeConfig.loadFromOptions({
    clusters: [
      {
        name: 'inCluster',
        server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
        caFile: join(accountDir, 'ca.crt'),
        skipTLSVerify: false,
      },
    ],
    users: [
      {
        name: 'inClusterUser',
        authProvider: { name: 'tokenFile', config: { tokenFile: join(accountDir, 'token') } },
      },
    ],
    contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser' }],
    currentContext: 'inClusterContext',
  });
}

function safeHomedir(): string | undefined {
  try {
    return homedir();
  } catch {
    return undefined;
  }
}

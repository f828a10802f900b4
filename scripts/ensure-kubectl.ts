/**
 * Makes sure the real `kubectl` is on this machine, for the test that checks the local Kubernetes
 * API test server against it. Present: prints where. Missing: as root on Debian, `apt-get update`
 * then installs the `kubectl` package, or Debian's `kubernetes-client` when there is no `kubectl`
 * package. `--json` prints, as the last line of stdout, `{"kubectl": "/usr/bin/kubectl"}` or
 * `{"unavailable": "<why, and how to install it>"}`. Progress goes to stderr.
 */
import { execFileSync } from 'node:child_process';
import { whichSync } from '@nodebatch/testkit';
import { aptInstaller } from './local-services/package-installer.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The kubectl on PATH when it runs (`kubectl version --client`), else undefined. */
function workingKubectl(): string | undefined {
  const path = whichSync('kubectl');
  if (!path) return undefined;
  try {
    execFileSync(path, ['version', '--client'], { stdio: 'ignore', timeout: 30_000 });
    return path;
  } catch {
    return undefined;
  }
}

async function ensureKubectl(): Promise<{ kubectl: string } | { unavailable: string }> {
  const present = workingKubectl();
  if (present) return { kubectl: present };
  const apt = aptInstaller();
  if (!apt.available) {
    return {
      unavailable:
        'kubectl is not installed and cannot be installed here (installing needs root and apt-get on Debian); ' +
        'install kubectl (https://kubernetes.io/docs/tasks/tools/) and run the tests again',
    };
  }
  const problems: string[] = [];
  // Debian bookworm has no `kubectl` package but has `kubernetes-client`; newer releases and the
  // Kubernetes apt repository have `kubectl`.
  for (const pkg of ['kubectl', 'kubernetes-client']) {
    try {
      log(`[kubectl] installing the ${pkg} package with apt-get`);
      await apt.install([pkg]);
      const installed = workingKubectl();
      if (installed) return { kubectl: installed };
      problems.push(`${pkg} installed but no working kubectl on PATH`);
    } catch (error) {
      problems.push(
        `apt-get install ${pkg} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  return { unavailable: `kubectl could not be installed: ${problems.join('; ')}` };
}

const result = await ensureKubectl();
if ('kubectl' in result) log(`[kubectl] using ${result.kubectl}`);
else log(`[kubectl] ${result.unavailable}`);
if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit('kubectl' in result ? 0 : 1);

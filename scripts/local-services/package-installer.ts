import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { whichSync } from '@nodebatch/testkit';

/** Installs server packages when the machine lets us. */
export interface PackageInstaller {
  readonly name: string;
  /** false when installing is not possible here (not root, not Debian). */
  readonly available: boolean;
  install(packages: string[]): Promise<void>;
}

/**
 * apt-get, only when we are root on Debian or a derivative: anywhere else
 * installing system packages is the user's decision, so we say what to
 * install instead.
 */
export function aptInstaller(): PackageInstaller {
  const available =
    process.platform === 'linux' &&
    process.getuid?.() === 0 &&
    existsSync('/etc/debian_version') &&
    whichSync('apt-get') !== undefined;
  return {
    name: 'apt-get',
    available,
    async install(packages) {
      // Output goes to stderr: stdout carries the JSON line for run-tests.mjs.
      const options = {
        stdio: ['ignore', 2, 2] as ['ignore', number, number],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      };
      execFileSync('apt-get', ['update'], options);
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], options);
    },
  };
}

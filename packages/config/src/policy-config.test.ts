import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configEntries } from './config-entries.js';
import { ConfigError } from './config-error.js';
import { loadConfig } from './load-config.js';

function fileWith(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nb-policy-'));
  const path = join(dir, 'config.yaml');
  writeFileSync(path, yaml);
  return path;
}

describe('policy, auth and limits configuration', () => {
  it('reads the policy from the file and the environment, the environment winning, with sources', () => {
    const file = fileWith(
      [
        'policy:',
        '  drainRole: operator',
        '  seeAllTasksRoles: [admin, viewer]',
        '  protectedPrefixes: [kubernetes.io/, example.com/]',
        'auth:',
        '  groupsClaim: groups',
        '  groupRoles:',
        '    sre: admin',
        '    devs: operator',
      ].join('\n'),
    );
    const loaded = loadConfig({
      env: { CONFIG_FILE: file, POLICY_DRAIN_ROLE: 'admin', AUTH_GROUP_ROLES: 'ops=admin, readers=viewer' },
      cwd: '/',
    });
    expect(loaded.config.policy.drainRole).toBe('admin');
    expect(loaded.sources['policy.drainRole']).toBe('env:POLICY_DRAIN_ROLE');
    expect(loaded.config.policy.seeAllTasksRoles).toEqual(['admin', 'viewer']);
    expect(loaded.sources['policy.seeAllTasksRoles']).toBe(`file:${file}#policy.seeAllTasksRoles`);
    expect(loaded.config.policy.protectedPrefixes).toEqual(['kubernetes.io/', 'example.com/']);
    expect(loaded.config.auth.groupRoles).toEqual({ ops: 'admin', readers: 'viewer' });
    expect(loaded.config.auth.groupsClaim).toBe('groups');
    const shown = Object.fromEntries(configEntries(loaded).map((entry) => [entry.key, entry]));
    expect(shown['policy.drainRole']).toEqual({
      key: 'policy.drainRole',
      value: 'admin',
      source: 'env:POLICY_DRAIN_ROLE',
    });
    expect(shown['policy.protectedPrefixRole']).toMatchObject({ value: 'admin', source: 'default' });
  });

  it('refuses a bad role, role list, group map or limit, naming the variable or file key', () => {
    const attempt = (env: Record<string, string>): string => {
      try {
        loadConfig({ env, cwd: '/' });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('the configuration was accepted');
    };
    expect(attempt({ POLICY_DRAIN_ROLE: 'root' })).toMatch(
      /POLICY_DRAIN_ROLE="root" \(from env POLICY_DRAIN_ROLE\): expected one of viewer, operator, admin/,
    );
    expect(attempt({ POLICY_SEE_ALL_TASKS_ROLES: 'admin,boss' })).toMatch(/POLICY_SEE_ALL_TASKS_ROLES/);
    expect(attempt({ AUTH_GROUP_ROLES: 'sre' })).toMatch(/AUTH_GROUP_ROLES.*group=role/);
    expect(attempt({ LIMIT_STREAMS_PER_USER: '0' })).toMatch(/LIMIT_STREAMS_PER_USER/);
    expect(attempt({ AUTH_JWKS_URL: 'ftp://idp' })).toMatch(/AUTH_JWKS_URL.*http/);
    const file = fileWith('policy:\n  drainRole: superuser\n');
    expect(attempt({ CONFIG_FILE: file })).toMatch(/policy\.drainRole="superuser" \(from file .*line 2\)/);
  });
});

import type { PolicyConfig } from '@nodebatch/config';
import type { BatchAction } from '@nodebatch/progress';
import type { Principal, Role } from './auth.js';
import { roleAtLeast } from './auth.js';

/** What the policy said about one request, as the audit trail records it. */
interface PolicyDecision {
  allowed: boolean;
  /** The configuration key of the rule that decided, e.g. `policy.drainRole`. */
  rule: string;
  /** For a refusal: the sentence the 403 carries. */
  message: string;
}

/** The label and taint keys a batch touches, for the protected-prefix rule. */
export interface TouchedKeys {
  labels: string[];
  taints: string[];
  /** A copyFrom batch: the taint keys it copies from its source node (see copiedTaintKeys). */
  copiedTaints?: { from: string; keys: string[] } | undefined;
}

/**
 * Who may do what. Roles are ordered viewer < operator < admin; each action
 * needs a least role (policy.<action>Role), keys under a protected prefix
 * need policy.protectedPrefixRole, and tasks are visible to their owner and
 * to the roles in policy.seeAllTasksRoles. Cancel: the owner or an admin.
 */
export class Policy {
  readonly #config: PolicyConfig;

  constructor(config: PolicyConfig) {
    this.#config = config;
  }

  /** May `principal` run `action` touching these keys? */
  decideBatch(principal: Principal, action: BatchAction, keys: TouchedKeys): PolicyDecision {
    const rule = `policy.${action}Role`;
    const required = this.#actionRole(action);
    if (!roleAtLeast(principal.role, required)) {
      return refuse(rule, `role ${principal.role} may not ${action}: ${rule} requires ${required}`);
    }
    if (!this.mayTouchProtectedKeys(principal)) {
      const copied = keys.copiedTaints;
      for (const [what, list] of [
        ['change the label', keys.labels],
        ['change the taint', keys.taints],
        [`copy from node ${JSON.stringify(copied?.from)} the taint`, copied?.keys ?? []],
      ] as const) {
        const key = list.find((candidate) => this.isProtected(candidate));
        if (key !== undefined) {
          return refuse(
            'policy.protectedPrefixes',
            `role ${principal.role} may not ${what} ${JSON.stringify(key)}: keys under ${this.#config.protectedPrefixes.join(', ')} need ${this.#config.protectedPrefixRole} (policy.protectedPrefixRole)`,
          );
        }
      }
    }
    return { allowed: true, rule, message: '' };
  }

  /** May `principal` change label and taint keys under the protected prefixes? */
  mayTouchProtectedKeys(principal: Principal): boolean {
    return roleAtLeast(principal.role, this.#config.protectedPrefixRole);
  }

  /** May `principal` see every user's tasks (rather than only their own)? */
  seesAllTasks(principal: Principal): boolean {
    return this.#config.seeAllTasksRoles.includes(principal.role);
  }

  /** May `principal` see a task created by `ownerId`? */
  maySeeTask(principal: Principal, ownerId: string): boolean {
    return principal.userId === ownerId || this.seesAllTasks(principal);
  }

  /** Cancel: the task's owner or an admin. */
  decideCancel(principal: Principal, ownerId: string): PolicyDecision {
    if (principal.userId === ownerId || this.cancelsAnyTask(principal)) {
      return { allowed: true, rule: 'cancel.ownerOrAdmin', message: '' };
    }
    return refuse(
      'cancel.ownerOrAdmin',
      `${principal.userId} (role ${principal.role}) may not cancel a task of ${ownerId}: only its owner or an admin may`,
    );
  }

  /** May `principal` cancel every user's tasks (not only their own)? Admins may. */
  cancelsAnyTask(principal: Principal): boolean {
    return principal.role === 'admin';
  }

  /** The label and taint key prefixes that need policy.protectedPrefixRole. */
  get protectedPrefixes(): readonly string[] {
    return this.#config.protectedPrefixes;
  }

  /** The audit trail: admins only. */
  decideAuditRead(principal: Principal): PolicyDecision {
    return principal.role === 'admin'
      ? { allowed: true, rule: 'audit.adminOnly', message: '' }
      : refuse('audit.adminOnly', `role ${principal.role} may not read the audit trail: admins only`);
  }

  isProtected(key: string): boolean {
    // `kubernetes.io/` protects `kubernetes.io/hostname` and `node.kubernetes.io/x` alike: the
    // prefix is the domain part, matched at a label boundary.
    const domain = key.includes('/') ? `${key.slice(0, key.indexOf('/'))}/` : '';
    return this.#config.protectedPrefixes.some(
      (prefix) => key.startsWith(prefix) || (domain !== '' && domain.endsWith(`.${prefix}`)),
    );
  }

  #actionRole(action: BatchAction): Role {
    const roles: Record<BatchAction, Role> = {
      cordon: this.#config.cordonRole,
      uncordon: this.#config.uncordonRole,
      drain: this.#config.drainRole,
      label: this.#config.labelRole,
      taint: this.#config.taintRole,
    };
    // An action this table does not know (a newer one) is an admin's.
    return roles[action] ?? 'admin';
  }
}

function refuse(rule: string, message: string): PolicyDecision {
  return { allowed: false, rule, message };
}

/** The label and taint keys named by a batch's params (copied taints: see copiedTaintKeys). */
export function touchedKeys(action: BatchAction, params: Record<string, unknown>): TouchedKeys {
  const labels: string[] = [];
  const taints: string[] = [];
  if (action === 'label') {
    labels.push(...Object.keys((params.set as Record<string, unknown> | undefined) ?? {}));
    labels.push(...((params.remove as string[] | undefined) ?? []));
  }
  if (action === 'taint') {
    for (const list of [params.add, params.remove]) {
      for (const taint of (list as { key?: unknown }[] | undefined) ?? []) {
        if (typeof taint?.key === 'string') taints.push(taint.key);
      }
    }
  }
  return { labels, taints };
}

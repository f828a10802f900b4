import { BATCH_ACTIONS } from '@nodebatch/progress';
import type { BatchAction } from '@nodebatch/progress';
import type { GatewayContext, GatewayPlugin } from '../gateway-context.js';
import type { Authenticator } from '../auth.js';
import { bearerToken } from './authentication.js';

interface WhoamiPluginOptions {
  context: GatewayContext;
  authenticator: Authenticator;
}

/** What GET /api/v1/whoami answers: the caller and what the policy lets them do. */
type WhoamiResponse = { signedIn: false } | SignedIn;

interface SignedIn {
  signedIn: true;
  userId: string;
  role: string;
  /** True when the gateway runs with AUTH_DISABLED (every request is the admin `demo`). */
  authDisabled: boolean;
  /** Batch actions the role may run (keys under protected prefixes aside, see `protectedKeys`). */
  actions: BatchAction[];
  /** Whether the caller may change label and taint keys under `protectedPrefixes`. */
  protectedKeys: boolean;
  protectedPrefixes: string[];
  /** Whether the task list shows every user's tasks rather than the caller's own. */
  seesAllTasks: boolean;
  /** Whether the caller may cancel any task (otherwise only their own). */
  cancelsAnyTask: boolean;
  /** Whether the caller may read the audit trail. */
  readsAudit: boolean;
}

/**
 * GET /api/v1/whoami: the signed-in user, their role and the actions the policy allows them, so a
 * client offers only what the server would accept. The server still decides each request.
 *
 * A request without a token is `{signedIn: false}` rather than a 401, so the page can ask before
 * anyone signed in (a proxy in front may also supply the token). A token that does not verify is
 * still a 401 naming why.
 */
export const whoamiPlugin: GatewayPlugin<WhoamiPluginOptions> = async (app, options) => {
  const { policy } = options.context;
  const { authenticator } = options;
  app.get('/api/v1/whoami', { config: { public: true } }, async (request): Promise<WhoamiResponse> => {
    const { token, source } = bearerToken(request, false);
    if (source === null && !authenticator.disabled) return { signedIn: false };
    const principal = await authenticator.authenticate(token);
    const none = { labels: [], taints: [] };
    return {
      signedIn: true,
      userId: principal.userId,
      role: principal.role,
      authDisabled: authenticator.disabled,
      actions: BATCH_ACTIONS.filter((action) => policy.decideBatch(principal, action, none).allowed),
      protectedKeys: policy.mayTouchProtectedKeys(principal),
      protectedPrefixes: [...policy.protectedPrefixes],
      seesAllTasks: policy.seesAllTasks(principal),
      cancelsAnyTask: policy.cancelsAnyTask(principal),
      readsAudit: policy.decideAuditRead(principal).allowed,
    };
  });
};

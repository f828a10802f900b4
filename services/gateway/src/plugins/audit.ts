import { z } from 'zod';
import { refuse } from '../gateway-context.js';
import type { GatewayContext, GatewayPlugin } from '../gateway-context.js';

interface AuditPluginOptions {
  context: GatewayContext;
}

const AuditQuerySchema = z.strictObject({
  user: z.string().min(1).max(300).optional(),
  action: z.string().min(1).max(100).optional(),
  node: z.string().min(1).max(253).optional(),
  task: z.string().min(1).max(200).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  /** The `nextCursor` of the previous page. */
  before: z
    .string()
    .regex(/^\d{1,18}$/, 'expected the nextCursor of a previous page')
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

/** GET /api/v1/audit: the audit trail, newest first, for admins. */
export const auditPlugin: GatewayPlugin<AuditPluginOptions> = async (app, options) => {
  const { context } = options;

  app.get('/api/v1/audit', { schema: { querystring: AuditQuerySchema } }, async (request) => {
    const decision = context.policy.decideAuditRead(request.principal!);
    if (!decision.allowed) {
      await refuse(context, request, {
        action: 'audit.read',
        rule: decision.rule,
        message: decision.message,
      });
    }
    const q = request.query;
    return context.services.audit.list({
      ...(q.user === undefined ? {} : { userId: q.user }),
      ...(q.action === undefined ? {} : { action: q.action }),
      ...(q.node === undefined ? {} : { node: q.node }),
      ...(q.task === undefined ? {} : { taskId: q.task }),
      ...(q.since === undefined ? {} : { since: q.since }),
      ...(q.until === undefined ? {} : { until: q.until }),
      ...(q.before === undefined ? {} : { before: q.before }),
      ...(q.limit === undefined ? {} : { limit: q.limit }),
    });
  });
};

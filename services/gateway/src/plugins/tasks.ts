import { randomUUID } from 'node:crypto';
import { TASK_SUMMARY_STATUSES } from '@nodebatch/event-store';
import { InvalidNodeInputError, validateBatchParams } from '@nodebatch/kube';
import { TaskAlreadyEndedError, UnknownTaskError, loadTaskState } from '@nodebatch/progress';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BatchAcceptedSchema, BatchRequestSchema, MAX_TASK_CREATED_BYTES } from '../batch-request.js';
import type { BatchRequest } from '../batch-request.js';
import {
  GatewayError,
  InvalidRequestError,
  PayloadTooLargeError,
  TaskEndedConflictError,
  TaskGoneError,
  TooManyRequestsError,
} from '../errors.js';
import { authorizeTask, recordAudit, refuse } from '../gateway-context.js';
import type { GatewayContext, GatewayPlugin } from '../gateway-context.js';
import { copiedTaintKeys } from '../copied-taints.js';
import { touchedKeys } from '../policy.js';
import {
  checkBatchLimits,
  requireInventory,
  resolveCluster,
  type BatchLimits,
  type ClusterDirectory,
} from '../batch-targets.js';

interface TasksPluginOptions {
  context: GatewayContext;
  /** The clusters batches may name, and their inventories (selector resolution). */
  clusters: ClusterDirectory;
  /** Largest batch and per-action concurrency. */
  batchLimits: BatchLimits;
  /** Batch submissions per user per minute. */
  batchesPerMinute: number;
  /** Cancels per user per minute. */
  cancelsPerMinute: number;
}

export const TaskParamsSchema = z.object({ id: z.string().min(1).max(200) });
/** Body of a cancel, optional: why, for the task's log and the audit trail. */
const CancelRequestSchema = z
  .strictObject({ reason: z.string().trim().min(1).max(1024).optional() })
  // A POST without a body (what clients send) reaches the schema as null.
  .nullish();
const ListQuerySchema = z.object({
  status: z.enum(TASK_SUMMARY_STATUSES).optional(),
  limit: z.coerce.number().int().positive().max(500).optional(),
});

/** Submitting batches, reading and listing tasks, cancelling. */
export const tasksPlugin: GatewayPlugin<TasksPluginOptions> = async (app, options) => {
  const { context } = options;
  const { services, policy } = context;

  app.post(
    '/api/v1/batches',
    {
      schema: { body: BatchRequestSchema, response: { 202: BatchAcceptedSchema } },
      config: { rateLimit: perUserRate(options.batchesPerMinute, 'LIMIT_BATCHES_PER_MINUTE', 'batches') },
    },
    async (request, reply) => {
      const principal = request.principal!;
      const body = request.body;
      const params = checkBatchParams(body.action, body.params);
      const cluster = resolveCluster(options.clusters, body.cluster);
      // A selector is resolved now, once: the task records the names, so what runs is what was accepted.
      const nodes = body.nodes ?? (await resolveSelectorOrRefuse(options.clusters, cluster, body.selector!));
      checkBatchLimits(options.batchLimits, body.action, nodes.length, body.concurrency);
      // What the audit row of this request says it was, allowed or refused (invariant 11).
      const described = {
        action: body.action,
        nodes,
        params,
        cluster,
        selector: body.selector,
        reason: body.reason,
      };
      const keys = touchedKeys(body.action, params);
      if (
        body.action === 'taint' &&
        typeof params.copyFrom === 'string' &&
        !policy.mayTouchProtectedKeys(principal)
      ) {
        const copy = { copyFrom: params.copyFrom, mode: params.mode as 'merge' | 'replace' | undefined };
        const copied = await copiedTaintKeys(requireInventory(options.clusters, cluster), copy, nodes);
        keys.copiedTaints = copied.copiedTaints;
        keys.taints.push(...copied.taints);
      }
      const decision = policy.decideBatch(principal, body.action, keys);
      if (!decision.allowed) {
        await refuse(context, request, { ...described, rule: decision.rule, message: decision.message });
      }
      const created = {
        userId: principal.userId,
        action: body.action,
        nodes,
        params,
        ...(body.concurrency === undefined ? {} : { concurrency: body.concurrency }),
        ...(body.reason === undefined ? {} : { reason: body.reason }),
        // Always recorded, also when defaulted: the task says where it ran.
        cluster,
        ...(body.selector === undefined ? {} : { selector: body.selector }),
      };
      // The event lists every node; refuse here, naming the limit, rather
      // than let the store refuse it as an internal error.
      const bytes = Buffer.byteLength(JSON.stringify(created), 'utf8');
      if (bytes > MAX_TASK_CREATED_BYTES) {
        throw new PayloadTooLargeError(
          'body.nodes',
          `the batch is ${bytes} bytes as recorded (${nodes.length} nodes), over the limit of ${MAX_TASK_CREATED_BYTES}; split it into smaller batches`,
        );
      }
      const taskId = randomUUID();
      await services.notifier.append(taskId, [{ type: 'TaskCreated', data: created }], { expectedSeq: 0 });
      context.owners.remember(taskId, principal.userId);
      try {
        // No batch runs without its audit row (invariant 11, docs/invariants.md): written before the job is queued.
        await recordAudit(context, request, {
          ...described,
          taskId,
          decision: 'allowed',
          rule: decision.rule,
        });
      } catch (err) {
        await failUnqueuedTask(
          context,
          request,
          taskId,
          'the audit trail is unavailable',
          'AUDIT_UNAVAILABLE',
        );
        throw new GatewayError('AUDIT_UNAVAILABLE', 503, 'the audit trail is unavailable; try again later', {
          cause: err,
          retryAfterSeconds: 5,
        });
      }
      try {
        await services.queue.enqueue({ taskId }, cluster);
      } catch (err) {
        request.log.error({ err, taskId }, 'could not enqueue a batch; marking the task failed');
        await failUnqueuedTask(context, request, taskId, 'the job queue is unavailable', 'QUEUE_UNAVAILABLE');
        throw new GatewayError('QUEUE_UNAVAILABLE', 503, 'the job queue is unavailable; try again later', {
          cause: err,
        });
      }
      request.log.info(
        { taskId, userId: principal.userId, action: body.action, nodes: nodes.length, cluster },
        'batch accepted',
      );
      return reply.code(202).send({ taskId });
    },
  );

  app.get('/api/v1/tasks', { schema: { querystring: ListQuerySchema } }, async (request) => {
    const principal = request.principal!;
    const tasks = await services.tasks.listTasks({
      ...(policy.seesAllTasks(principal) ? {} : { userId: principal.userId }),
      ...(request.query.status ? { status: request.query.status } : {}),
      ...(request.query.limit ? { limit: request.query.limit } : {}),
    });
    return { tasks };
  });

  app.get('/api/v1/tasks/:id', { schema: { params: TaskParamsSchema } }, async (request) => {
    const taskId = request.params.id;
    await authorizeTask(context, taskId, request.principal!);
    try {
      return await loadTaskState(services.tasks, taskId);
    } catch (err) {
      if (!(err instanceof UnknownTaskError)) throw err;
      // Known a moment ago, gone now: retention deleted it meanwhile.
      context.owners.forget(taskId);
      throw new TaskGoneError(taskId);
    }
  });

  app.post(
    '/api/v1/tasks/:id/cancel',
    {
      schema: { params: TaskParamsSchema, body: CancelRequestSchema },
      config: { rateLimit: perUserRate(options.cancelsPerMinute, 'LIMIT_CANCELS_PER_MINUTE', 'cancels') },
    },
    async (request, reply) => {
      const principal = request.principal!;
      const taskId = request.params.id;
      const reason = request.body?.reason;
      const { ownerId } = await authorizeTask(context, taskId, principal);
      // The audit row of a cancel names the batch it stops: its cluster, selector and nodes.
      const batch = await cancelledBatch(context, taskId, options.clusters);
      const described = { action: 'cancel', taskId, reason, ...batch };
      const decision = policy.decideCancel(principal, ownerId);
      if (!decision.allowed) {
        await refuse(context, request, { ...described, rule: decision.rule, message: decision.message });
      }
      try {
        await services.notifier.append(taskId, [
          { type: 'CancelRequested', data: { by: principal.userId, ...(reason && { reason }) } },
        ]);
      } catch (err) {
        if (err instanceof TaskAlreadyEndedError)
          throw new TaskEndedConflictError(taskId, err.terminalType, { cause: err });
        throw err;
      }
      await recordAudit(context, request, {
        ...described,
        decision: 'allowed',
        rule: decision.rule,
      }).catch((err: unknown) =>
        request.log.error({ err, taskId }, 'could not record a cancel in the audit trail'),
      );
      request.log.info({ taskId, by: principal.userId }, 'cancel requested');
      return reply.code(202).send({ taskId, status: 'cancelling' });
    },
  );
};

/** @fastify/rate-limit settings counting per user (the route is authenticated first). */
function perUserRate(
  perMinute: number,
  setting: string,
  what: string,
): {
  max: number;
  timeWindow: number;
  keyGenerator: (request: FastifyRequest) => string;
  errorResponseBuilder: (request: FastifyRequest, context: { ttl: number }) => Error;
} {
  return {
    max: perMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => `user:${request.principal?.userId ?? request.ip}`,
    errorResponseBuilder: (_request, limit) =>
      new TooManyRequestsError(
        'RATE_LIMITED',
        `at most ${perMinute} ${what} per user per minute (${setting}); retry in ${Math.ceil(limit.ttl / 1000)} s`,
        Math.ceil(limit.ttl / 1000),
      ),
  };
}

/** The cluster, selector and nodes of the batch a cancel names, from its TaskCreated. */
async function cancelledBatch(
  context: GatewayContext,
  taskId: string,
  clusters: ClusterDirectory,
): Promise<{ nodes?: string[]; cluster?: string | undefined; selector?: string | undefined }> {
  // Retention may delete the task between the owner check and this read: the row then names less.
  const [created] = await context.services.tasks
    .readTask(taskId, { limit: 1 })
    .catch((err: unknown) => (err instanceof UnknownTaskError ? [] : Promise.reject(err)));
  if (created?.type !== 'TaskCreated') return {};
  const { nodes, cluster, selector } = created.data;
  // A batch that named no cluster ran on the default one, as its accepted row says.
  return { nodes, cluster: cluster ?? clusters.names[0], selector };
}

/** A task in the log that no worker will see: end it so nobody waits for it. */
async function failUnqueuedTask(
  context: GatewayContext,
  request: FastifyRequest,
  taskId: string,
  error: string,
  code: string,
): Promise<void> {
  await context.services.notifier
    .append(taskId, [{ type: 'TaskFailed', data: { error, code } }])
    .catch((appendErr: unknown) =>
      request.log.error({ err: appendErr, taskId }, 'could not mark the task failed'),
    );
}

/** The nodes a selector matches now; a 400 naming the selector when it matches none. */
async function resolveSelectorOrRefuse(
  clusters: ClusterDirectory,
  cluster: string,
  selector: string,
): Promise<string[]> {
  const nodes = await requireInventory(clusters, cluster).resolveSelector(selector);
  if (nodes.length === 0) {
    throw new InvalidRequestError(
      'body.selector',
      `selector ${JSON.stringify(selector)} matches no node of cluster ${JSON.stringify(cluster)}`,
    );
  }
  return nodes;
}

/** The action's params as the worker will read them; a 400 naming the field when they are wrong. */
function checkBatchParams(action: BatchRequest['action'], params: unknown): Record<string, unknown> {
  try {
    return validateBatchParams(action, params ?? {}) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof InvalidNodeInputError) {
      const first = err.issues[0];
      throw new InvalidRequestError(`body.${first?.path ?? 'params'}`, first?.message ?? err.message, {
        cause: err,
      });
    }
    throw err;
  }
}

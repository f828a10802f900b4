import { randomUUID } from 'node:crypto';
import { TASK_SUMMARY_STATUSES } from '@nodebatch/event-store';
import { InvalidNodeInputError, validateBatchParams } from '@nodebatch/kube';
import { TaskAlreadyEndedError, loadTaskState } from '@nodebatch/progress';
import { z } from 'zod';
import { BatchAcceptedSchema, BatchRequestSchema } from '../batch-request.js';
import type { BatchRequest } from '../batch-request.js';
import { GatewayError, InvalidRequestError, TaskEndedConflictError } from '../errors.js';
import { authorizeTask } from '../gateway-context.js';
import type { GatewayContext, GatewayPlugin } from '../gateway-context.js';

export interface TasksPluginOptions {
  context: GatewayContext;
}

export const TaskParamsSchema = z.object({ id: z.string().min(1).max(200) });
const ListQuerySchema = z.object({
  status: z.enum(TASK_SUMMARY_STATUSES).optional(),
  limit: z.coerce.number().int().positive().max(500).optional(),
});

/** Submitting batches, reading and listing tasks, cancelling. */
export const tasksPlugin: GatewayPlugin<TasksPluginOptions> = async (app, options) => {
  const { context } = options;
  const { services } = context;

  app.post(
    '/api/v1/batches',
    { schema: { body: BatchRequestSchema, response: { 202: BatchAcceptedSchema } } },
    async (request, reply) => {
      const principal = request.principal!;
      const body = request.body;
      const params = checkBatchParams(body.action, body.params);
      const taskId = randomUUID();
      await services.notifier.append(
        taskId,
        [
          {
            type: 'TaskCreated',
            data: {
              userId: principal.userId,
              action: body.action,
              nodes: body.nodes,
              params,
              ...(body.concurrency === undefined ? {} : { concurrency: body.concurrency }),
            },
          },
        ],
        { expectedSeq: 0 },
      );
      try {
        await services.queue.enqueue({ taskId });
      } catch (err) {
        // The task exists in the log but no worker will ever see it: end it
        // so that nobody waits for it, and tell the caller.
        request.log.error({ err, taskId }, 'could not enqueue a batch; marking the task failed');
        await services.notifier
          .append(taskId, [
            {
              type: 'TaskFailed',
              data: { error: 'the job queue is unavailable', code: 'QUEUE_UNAVAILABLE' },
            },
          ])
          .catch((appendErr: unknown) =>
            request.log.error({ err: appendErr, taskId }, 'could not mark the task failed'),
          );
        throw new GatewayError('QUEUE_UNAVAILABLE', 503, 'the job queue is unavailable; try again later', {
          cause: err,
        });
      }
      request.log.info(
        { taskId, userId: principal.userId, action: body.action, nodes: body.nodes.length },
        'batch accepted',
      );
      return reply.code(202).send({ taskId });
    },
  );

  app.get('/api/v1/tasks', { schema: { querystring: ListQuerySchema } }, async (request) => {
    const principal = request.principal!;
    const tasks = await services.tasks.listTasks({
      ...(principal.role === 'admin' ? {} : { userId: principal.userId }),
      ...(request.query.status ? { status: request.query.status } : {}),
      ...(request.query.limit ? { limit: request.query.limit } : {}),
    });
    return { tasks };
  });

  app.get('/api/v1/tasks/:id', { schema: { params: TaskParamsSchema } }, async (request) => {
    await authorizeTask(context, request.params.id, request.principal!);
    return loadTaskState(services.tasks, request.params.id);
  });

  app.post('/api/v1/tasks/:id/cancel', { schema: { params: TaskParamsSchema } }, async (request, reply) => {
    const principal = request.principal!;
    const taskId = request.params.id;
    await authorizeTask(context, taskId, principal);
    try {
      await services.notifier.append(taskId, [{ type: 'CancelRequested', data: { by: principal.userId } }]);
    } catch (err) {
      if (err instanceof TaskAlreadyEndedError)
        throw new TaskEndedConflictError(taskId, err.terminalType, { cause: err });
      throw err;
    }
    request.log.info({ taskId, by: principal.userId }, 'cancel requested');
    return reply.code(202).send({ taskId, status: 'cancelling' });
  });
};

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

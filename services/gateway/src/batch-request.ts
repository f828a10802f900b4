import { NodeNameSchema, labelSelectorProblems } from '@nodebatch/kube';
import { BatchActionSchema } from '@nodebatch/progress';
import { z } from 'zod';

/** Nodes one batch may name. */
export const MAX_NODES = 5000;

/**
 * Largest TaskCreated a batch may make, in bytes of JSON (413 above it):
 * 5,000 names such as ip-10-0-12-34.eu-west-1.compute.internal take about
 * 220 KiB. Below the store's TaskCreated limit (1 MiB) and an SSE client's
 * send buffer (1 MiB), so an accepted batch can always be stored and streamed.
 */
export const MAX_TASK_CREATED_BYTES = 512 * 1024;

/** Body of POST /api/v1/batches: `nodes` or `selector`, never both. */
export const BatchRequestSchema = z
  .strictObject({
    action: BatchActionSchema,
    nodes: z.array(NodeNameSchema).min(1).max(MAX_NODES).optional(),
    /** A label selector, resolved to node names when the batch is accepted (the task records the names). */
    selector: z
      .string()
      .min(1)
      .max(1024)
      .superRefine((selector, ctx) => {
        for (const message of labelSelectorProblems(selector)) ctx.addIssue({ code: 'custom', message });
      })
      .optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    /** Nodes worked on at once; the worker's default when absent; at most the operator's per-action limit. */
    concurrency: z.number().int().positive().max(1000).optional(),
    /** The named cluster; absent: the only (or default) one. */
    cluster: z.string().min(1).max(253).optional(),
    /** Why: cordon and drain write it on each node with who and when. */
    reason: z.string().trim().min(1).max(1024).optional(),
  })
  .superRefine((body, ctx) => {
    if ((body.nodes === undefined) === (body.selector === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['nodes'],
        message: 'give either nodes or selector (one of them)',
      });
    }
    const seen = new Set<string>();
    (body.nodes ?? []).forEach((node, index) => {
      if (seen.has(node)) {
        ctx.addIssue({
          code: 'custom',
          path: ['nodes', index],
          message: `node ${JSON.stringify(node)} is listed twice`,
        });
      }
      seen.add(node);
    });
  });
export type BatchRequest = z.infer<typeof BatchRequestSchema>;

export const BatchAcceptedSchema = z.object({ taskId: z.string() });

/** `nodes[3].name` from a path of keys, as users write it. */
export function formatFieldPath(root: string, path: readonly PropertyKey[]): string {
  let field = root;
  for (const key of path) {
    field += typeof key === 'number' ? `[${key}]` : field ? `.${String(key)}` : String(key);
  }
  return field;
}

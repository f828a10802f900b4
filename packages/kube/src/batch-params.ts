import { z } from 'zod';
import type { BatchAction } from '@nodebatch/progress';
import { InvalidNodeInputError } from './errors.js';
import {
  LabelKeySchema,
  LabelsSchema,
  NodeNameSchema,
  TaintListSchema,
  TaintRefListSchema,
} from './validation.js';
import { toInputIssues } from './validation.js';
import { labelSelectorProblems } from './label-selector.js';

/*
 * The `params` of each batch action. The gateway checks them to answer 400 naming the field, and
 * the worker checks them again when it takes the job (the job's TaskCreated event is outside input
 * to it too). Unknown keys are refused so a misspelt parameter is not silently ignored.
 */

const NoParamsSchema = z.strictObject({});

export const LabelParamsSchema = z
  .strictObject({
    /** Labels to set (added or overwritten). */
    set: LabelsSchema.optional(),
    /** Label keys to remove. */
    remove: z.array(LabelKeySchema).optional(),
  })
  .superRefine((params, ctx) => {
    const setKeys = Object.keys(params.set ?? {});
    if (setKeys.length === 0 && (params.remove ?? []).length === 0) {
      ctx.addIssue({ code: 'custom', message: 'give labels to set or label keys to remove' });
    }
    (params.remove ?? []).forEach((key, index) => {
      if (setKeys.includes(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['remove', index],
          message: `label ${JSON.stringify(key)} is both set and removed`,
        });
      }
    });
  });

export const TaintParamsSchema = z
  .strictObject({
    /** Taints to add (same key and effect replaced). */
    add: TaintListSchema.optional(),
    /** Taints to remove; without an effect, every taint with that key. */
    remove: TaintRefListSchema.optional(),
    /** A node whose taints (except the cluster's own) are copied onto each node of the batch. */
    copyFrom: NodeNameSchema.optional(),
    /** With copyFrom: `merge` (default) keeps the target's taints, `replace` drops them. */
    mode: z.enum(['merge', 'replace']).optional(),
  })
  .superRefine((params, ctx) => {
    if (
      (params.add ?? []).length === 0 &&
      (params.remove ?? []).length === 0 &&
      params.copyFrom === undefined
    ) {
      ctx.addIssue({ code: 'custom', message: 'give taints to add, taints to remove or a node to copyFrom' });
    }
    if (params.mode !== undefined && params.copyFrom === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['mode'],
        message: 'mode applies to copyFrom only; give copyFrom',
      });
    }
  });

/*
 * Drain options, named as kubectl's flags. Every option that can lose data or bypass a safeguard is
 * off unless the batch asks for it.
 */
export const DrainParamsSchema = z.strictObject({
  /** Per-node time limit of the drain, seconds (1 s to 24 h); the operator's default (300) when absent. */
  timeoutSeconds: z.number().int().min(1).max(86_400).optional(),
  /** Grace period given to each removed pod, seconds; the pod's own when absent. */
  gracePeriodSeconds: z.number().int().min(0).max(86_400).optional(),
  /** Remove pods that declare no controller (nothing recreates them). Default false. */
  force: z.boolean().optional(),
  /** Remove pods with emptyDir volumes (their data is lost). Default false. */
  deleteEmptyDirData: z.boolean().optional(),
  /** Label selector: only matching pods are removed. Default: all pods. */
  podSelector: z
    .string()
    .max(1024)
    .superRefine((selector, ctx) => {
      for (const message of labelSelectorProblems(selector)) ctx.addIssue({ code: 'custom', message });
    })
    .optional(),
  /** Delete pods instead of evicting them: bypasses PodDisruptionBudgets. Default false. */
  disableEviction: z.boolean().optional(),
  /** Server-side dry run: report what would be evicted and what blocks it; change nothing. Default false. */
  dryRun: z.boolean().optional(),
  /** Stop waiting for pods deleted longer ago than this, seconds (NotReady nodes). Default 0 = always wait. */
  skipWaitForDeleteTimeoutSeconds: z.number().int().min(0).max(86_400).optional(),
});

export const BatchParamsSchemas = {
  cordon: NoParamsSchema,
  uncordon: NoParamsSchema,
  drain: DrainParamsSchema,
  label: LabelParamsSchema,
  taint: TaintParamsSchema,
} as const satisfies Record<BatchAction, z.ZodType>;

export type LabelParams = z.output<typeof LabelParamsSchema>;
export type TaintParams = z.output<typeof TaintParamsSchema>;
export type DrainParams = z.output<typeof DrainParamsSchema>;
export type BatchParams<A extends BatchAction = BatchAction> = z.output<(typeof BatchParamsSchemas)[A]>;

/**
 * Checks the params of a batch action; returns them typed or throws InvalidNodeInputError whose
 * `issues` name each wrong field (`params.set["bad key"]`). Absent params count as `{}`.
 */
export function validateBatchParams<A extends BatchAction>(action: A, params: unknown): BatchParams<A> {
  // Indexed by a runtime string that may not be an action at all (outside input).
  const schema = (BatchParamsSchemas as Record<string, z.ZodType | undefined>)[action];
  if (!schema) {
    throw new InvalidNodeInputError([
      { path: 'action', message: `unknown batch action ${JSON.stringify(action)}` },
    ]);
  }
  const result = schema.safeParse(params ?? {});
  if (!result.success) {
    throw new InvalidNodeInputError(toInputIssues('params', result.error), {
      summary: `invalid params for ${action}`,
    });
  }
  return result.data as BatchParams<A>;
}

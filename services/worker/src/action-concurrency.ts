import type { BatchAction } from '@nodebatch/progress';

/**
 * How many nodes of one batch run at once unless TaskCreated names a
 * concurrency. Drain moves workloads off a node, so few run together to keep
 * capacity for the evicted pods; the others are one small patch each.
 */
export const DEFAULT_ACTION_CONCURRENCY: Readonly<Record<BatchAction, number>> = {
  drain: 2,
  cordon: 10,
  uncordon: 10,
  label: 10,
  taint: 10,
};

export function batchConcurrency(
  action: BatchAction,
  requested: number | undefined,
  defaults: Readonly<Record<BatchAction, number>> = DEFAULT_ACTION_CONCURRENCY,
): number {
  return Math.max(1, requested ?? defaults[action]);
}

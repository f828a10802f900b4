import type { Clock } from './clock.js';
import { InvalidNodeInputError } from './errors.js';
import { CORDON_ANNOTATIONS, type CordonReason } from './node-operator.js';

/** Longest reason kept (annotations share a 256 KiB budget per object; a reason is a sentence). */
export const MAX_CORDON_REASON_LENGTH = 1024;

/** Checks a cordon reason; InvalidNodeInputError names the field. */
export function validateCordonReason(reason: CordonReason): CordonReason {
  const issues: { path: string; message: string }[] = [];
  if (typeof reason.reason !== 'string' || reason.reason.trim() === '')
    issues.push({ path: 'reason', message: 'must be a non-empty text' });
  else if (reason.reason.length > MAX_CORDON_REASON_LENGTH)
    issues.push({ path: 'reason', message: `must be at most ${MAX_CORDON_REASON_LENGTH} characters` });
  if (typeof reason.by !== 'string' || reason.by.trim() === '')
    issues.push({ path: 'reason.by', message: 'must name who cordons' });
  if (reason.at !== undefined && Number.isNaN(Date.parse(reason.at)))
    issues.push({ path: 'reason.at', message: `must be an ISO-8601 time, got ${JSON.stringify(reason.at)}` });
  if (issues.length > 0) throw new InvalidNodeInputError(issues);
  return reason;
}

/** The annotations a cordon with a reason writes (who, when, why). */
export function cordonAnnotations(reason: CordonReason, clock: Clock): Record<string, string> {
  return {
    [CORDON_ANNOTATIONS.reason]: reason.reason,
    [CORDON_ANNOTATIONS.by]: reason.by,
    [CORDON_ANNOTATIONS.at]: reason.at ?? new Date(clock.now()).toISOString(),
  };
}

/** The cordon reason read back from a node's annotations, when nodebatch wrote one. */
export function cordonReasonOf(annotations: Record<string, string> | undefined): CordonReason | undefined {
  const reason = annotations?.[CORDON_ANNOTATIONS.reason];
  if (reason === undefined) return undefined;
  return {
    reason,
    by: annotations?.[CORDON_ANNOTATIONS.by] ?? '',
    ...(annotations?.[CORDON_ANNOTATIONS.at] ? { at: annotations[CORDON_ANNOTATIONS.at] } : {}),
  };
}

import { z } from 'zod';
import { InvalidNodeInputError, type InputIssue } from './errors.js';
import { TAINT_EFFECTS, type Taint, type TaintRef } from './node-operator.js';

/*
 * Kubernetes' own rules (k8s.io/apimachinery/pkg/util/validation), so a bad name is refused here
 * with a message naming it instead of by the API server after part of a batch already ran.
 */

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);
const DNS1123_SUBDOMAIN_MAX = 253;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const QUALIFIED_NAME_MAX = 63;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_VALUE_MAX = 63;

const SUBDOMAIN_RULE =
  "must be a lowercase RFC 1123 subdomain: lower case alphanumeric characters, '-' or '.', " +
  "starting and ending with an alphanumeric character (e.g. 'example.com'), at most 253 characters";
const NAME_RULE =
  "must consist of alphanumeric characters, '-', '_' or '.', starting and ending with an " +
  "alphanumeric character (e.g. 'MyName', 'my.name' or '123-abc'), at most 63 characters";

function quote(value: string): string {
  return JSON.stringify(value.length > 300 ? `${value.slice(0, 300)}...` : value);
}

/** Problems of a node name (RFC 1123 subdomain); empty when valid. */
export function nodeNameProblems(name: string): string[] {
  if (name.length === 0) return ['node name must not be empty'];
  if (name.length > DNS1123_SUBDOMAIN_MAX || !DNS1123_SUBDOMAIN.test(name)) {
    return [`node name ${quote(name)} ${SUBDOMAIN_RULE}`];
  }
  return [];
}

/** Problems of a label or taint key: an optional DNS-subdomain prefix and '/', then a name. */
export function labelKeyProblems(key: string, what = 'label key'): string[] {
  const parts = key.split('/');
  if (parts.length > 2) {
    return [
      `${what} ${quote(key)} must be a name with an optional DNS subdomain prefix and one '/' (e.g. 'example.com/MyName')`,
    ];
  }
  const problems: string[] = [];
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix.length === 0) problems.push(`${what} ${quote(key)}: the prefix before '/' must not be empty`);
    else if (prefix.length > DNS1123_SUBDOMAIN_MAX || !DNS1123_SUBDOMAIN.test(prefix)) {
      problems.push(`${what} ${quote(key)}: the prefix ${quote(prefix)} ${SUBDOMAIN_RULE}`);
    }
  }
  if (name.length === 0) problems.push(`${what} ${quote(key)}: the name part must not be empty`);
  else if (name.length > QUALIFIED_NAME_MAX || !QUALIFIED_NAME.test(name)) {
    problems.push(`${what} ${quote(key)}: the name part ${quote(name)} ${NAME_RULE}`);
  }
  return problems;
}

/** Problems of a label or taint value: empty, or a name of at most 63 characters. */
export function labelValueProblems(value: string, what = 'label value'): string[] {
  if (value.length > LABEL_VALUE_MAX || !LABEL_VALUE.test(value)) {
    return [
      `${what} ${quote(value)} must be empty or consist of alphanumeric characters, '-', '_' or '.', ` +
        "starting and ending with an alphanumeric character (e.g. 'MyValue', 'my_value' or '12345'), at most 63 characters",
    ];
  }
  return [];
}

function refined(problems: (value: string) => string[]) {
  return z.string().superRefine((value, ctx) => {
    for (const message of problems(value)) ctx.addIssue({ code: 'custom', message });
  });
}

export const NodeNameSchema = refined(nodeNameProblems);
export const LabelKeySchema = refined((key) => labelKeyProblems(key));
export const LabelValueSchema = refined((value) => labelValueProblems(value));
export const TaintKeySchema = refined((key) => labelKeyProblems(key, 'taint key'));
export const TaintValueSchema = refined((value) => labelValueProblems(value, 'taint value'));
export const TaintEffectSchema = z.enum(TAINT_EFFECTS, {
  error: (issue) => `taint effect ${quote(String(issue.input))} must be one of ${TAINT_EFFECTS.join(', ')}`,
});

export const LabelsSchema = z.record(LabelKeySchema, LabelValueSchema);
export const LabelKeysSchema = z.array(LabelKeySchema);

export const TaintSchema = z.strictObject({
  key: TaintKeySchema,
  value: TaintValueSchema.optional(),
  effect: TaintEffectSchema,
});

export const TaintRefSchema = z.strictObject({ key: TaintKeySchema, effect: TaintEffectSchema.optional() });

/** Taints to add: also refuses two taints with the same key and effect, as the API server would. */
export const TaintListSchema = z.array(TaintSchema).superRefine((taints, ctx) => {
  const seen = new Set<string>();
  taints.forEach((taint, index) => {
    const id = `${taint.key}:${taint.effect}`;
    if (seen.has(id)) {
      ctx.addIssue({
        code: 'custom',
        path: [index],
        message: `taint ${quote(taint.key)} with effect ${taint.effect} is given twice`,
      });
    }
    seen.add(id);
  });
});

export const TaintRefListSchema = z.array(TaintRefSchema);

/** `params.set["a b"]`, `params.add[0].effect`: a zod issue path as a user reads it. */
export function formatIssuePath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/** zod issues as InputIssues under `root`. */
export function toInputIssues(root: string, error: z.ZodError): InputIssue[] {
  return error.issues.flatMap((issue) => {
    const path = formatIssuePath(root, issue.path);
    // A bad record key comes as one "Invalid key in record" wrapping the key schema's own messages.
    if (issue.code === 'invalid_key' && issue.issues.length > 0) {
      return issue.issues.map((inner) => ({ path, message: inner.message }));
    }
    return [{ path, message: issue.message }];
  });
}

function check<T>(schema: z.ZodType<T>, value: unknown, root: string, summary: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new InvalidNodeInputError(toInputIssues(root, result.error), { summary });
  return result.data;
}

/** Throws InvalidNodeInputError unless `name` is a valid node name. */
export function validateNodeName(name: unknown, path = 'node'): string {
  return check(NodeNameSchema, name, path, 'invalid node name');
}

export function validateLabelKey(key: unknown, path = 'key'): string {
  return check(LabelKeySchema, key, path, 'invalid label key');
}

export function validateLabelValue(value: unknown, path = 'value'): string {
  return check(LabelValueSchema, value, path, 'invalid label value');
}

export function validateLabels(labels: unknown, path = 'labels'): Record<string, string> {
  return check(LabelsSchema, labels, path, 'invalid labels');
}

export function validateLabelKeys(keys: unknown, path = 'keys'): string[] {
  return check(LabelKeysSchema, keys, path, 'invalid label keys');
}

export function validateTaint(taint: unknown, path = 'taint'): Taint {
  return check(TaintSchema, taint, path, 'invalid taint');
}

export function validateTaints(taints: unknown, path = 'taints'): Taint[] {
  return check(TaintListSchema, taints, path, 'invalid taints');
}

export function validateTaintRefs(refs: unknown, path = 'taints'): TaintRef[] {
  return check(TaintRefListSchema, refs, path, 'invalid taint references');
}

/**
 * The arguments of `nodebatch label|taint|drain` in the syntax kubectl users
 * type, turned into the batch params the gateway takes. The gateway validates
 * the result again (keys, values, effects); these functions only split the
 * text and name the argument that cannot be read.
 */

/** An argument that is not in kubectl's syntax; `argument` is the offending text. */
export class ArgumentSyntaxError extends Error {
  constructor(
    readonly argument: string,
    message: string,
  ) {
    super(`${JSON.stringify(argument)}: ${message}`);
    this.name = 'ArgumentSyntaxError';
  }
}

interface LabelParams {
  set?: Record<string, string>;
  remove?: string[];
}

interface TaintParams {
  add?: Array<{ key: string; value?: string; effect: string }>;
  remove?: Array<{ key: string; effect?: string }>;
}

/** Node names never contain '=' or ':' and never end with '-' (DNS subdomain names): anything that does is a spec. */
export function isLabelSpec(argument: string): boolean {
  return argument.includes('=') || argument.endsWith('-');
}

export function isTaintSpec(argument: string): boolean {
  return argument.includes('=') || argument.includes(':') || argument.endsWith('-');
}

/** `key=value` sets a label, `key-` removes it (kubectl label). */
export function parseLabelSpecs(specs: readonly string[]): LabelParams {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const spec of specs) {
    if (spec.endsWith('-') && !spec.includes('=')) {
      const key = spec.slice(0, -1);
      if (!key) throw new ArgumentSyntaxError(spec, 'a label to remove needs a key: key-');
      remove.push(key);
      continue;
    }
    const equals = spec.indexOf('=');
    if (equals <= 0)
      throw new ArgumentSyntaxError(spec, 'expected key=value to set a label or key- to remove one');
    const key = spec.slice(0, equals);
    if (key in set) throw new ArgumentSyntaxError(spec, `label ${key} is given twice`);
    set[key] = spec.slice(equals + 1);
  }
  return {
    ...(Object.keys(set).length > 0 ? { set } : {}),
    ...(remove.length > 0 ? { remove } : {}),
  };
}

/**
 * `key=value:Effect` or `key:Effect` adds a taint; `key:Effect-` removes the
 * taint with that key and effect, `key-` every taint with that key (kubectl taint).
 */
export function parseTaintSpecs(specs: readonly string[]): TaintParams {
  const add: NonNullable<TaintParams['add']> = [];
  const remove: NonNullable<TaintParams['remove']> = [];
  for (const spec of specs) {
    const removing = spec.endsWith('-');
    const body = removing ? spec.slice(0, -1) : spec;
    const colon = body.lastIndexOf(':');
    const keyValue = colon >= 0 ? body.slice(0, colon) : body;
    const effect = colon >= 0 ? body.slice(colon + 1) : undefined;
    const equals = keyValue.indexOf('=');
    const key = equals >= 0 ? keyValue.slice(0, equals) : keyValue;
    const value = equals >= 0 ? keyValue.slice(equals + 1) : undefined;
    if (!key) throw new ArgumentSyntaxError(spec, 'a taint needs a key: key=value:Effect, key:Effect-, key-');
    if (effect === '') throw new ArgumentSyntaxError(spec, 'the effect after ":" is empty');
    if (removing) {
      remove.push({ key, ...(effect ? { effect } : {}) });
    } else {
      if (!effect) {
        throw new ArgumentSyntaxError(
          spec,
          'a taint to add needs an effect: key=value:NoSchedule (or PreferNoSchedule, NoExecute)',
        );
      }
      add.push({ key, ...(value ? { value } : {}), effect });
    }
  }
  return { ...(add.length > 0 ? { add } : {}), ...(remove.length > 0 ? { remove } : {}) };
}

/**
 * A duration as kubectl takes it (Go's syntax: `90s`, `5m`, `1h30m`, `1.5h`),
 * or a bare number of seconds; returns whole seconds.
 */
export function parseDurationSeconds(text: string, flag: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  const pattern = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let seconds = 0;
  let matched = 0;
  for (let match = pattern.exec(trimmed); match; match = pattern.exec(trimmed)) {
    seconds += Number(match[1]) * units[match[2]!]!;
    matched = pattern.lastIndex;
  }
  if (matched === 0 || matched !== trimmed.length) {
    throw new ArgumentSyntaxError(text, `${flag} expects a duration such as 90s, 5m or 1h30m`);
  }
  return Math.ceil(seconds);
}

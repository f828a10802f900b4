import { labelKeyProblems, labelValueProblems } from './validation.js';

/*
 * Kubernetes label selectors (k8s.io/apimachinery/pkg/labels): `app=web,tier!=db,env in (a,b),
 * zone notin (x),gpu,!spot`. Parsed here so a bad selector is refused with a message naming it
 * before anything is sent, and so the selector the API server gets is the one that was checked.
 */

/** One requirement of a label selector. */
export type LabelRequirement =
  | { key: string; operator: 'in' | 'notin'; values: string[] }
  | { key: string; operator: 'exists' | 'doesnotexist' };

/** A selector that is not valid label selector syntax; `problems` says what and where. */
export class LabelSelectorSyntaxError extends Error {
  constructor(
    readonly selector: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid label selector ${JSON.stringify(selector)}: ${problems.join('; ')}`);
    this.name = 'LabelSelectorSyntaxError';
  }
}

/** Splits at commas that are not inside `( )`, as the API server's lexer does. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (char === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += char;
  }
  terms.push(current);
  return terms.map((term) => term.trim());
}

/** Parses a label selector; an empty selector matches everything. Throws LabelSelectorSyntaxError. */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  if (selector.trim() === '') return [];
  const requirements: LabelRequirement[] = [];
  const problems: string[] = [];
  for (const term of splitTerms(selector)) {
    let match: RegExpExecArray | null;
    if (term === '') {
      problems.push('empty requirement (two commas in a row, or a trailing comma)');
    } else if ((match = /^!\s*([^\s=!(),]+)$/.exec(term))) {
      requirements.push({ key: match[1]!, operator: 'doesnotexist' });
    } else if ((match = /^([^\s=!(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(term))) {
      const values = match[3]!.split(',').map((value) => value.trim());
      requirements.push({ key: match[1]!, operator: match[2] as 'in' | 'notin', values });
    } else if ((match = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(term))) {
      requirements.push({
        key: match[1]!,
        operator: match[2] === '!=' ? 'notin' : 'in',
        values: [match[3]!],
      });
    } else if ((match = /^([^\s=!(),]+)$/.exec(term))) {
      requirements.push({ key: match[1]!, operator: 'exists' });
    } else {
      problems.push(`cannot parse ${JSON.stringify(term)}`);
    }
  }
  for (const requirement of requirements) {
    problems.push(...labelKeyProblems(requirement.key));
    if ('values' in requirement) {
      if (requirement.values.length === 0) problems.push(`${requirement.key}: give at least one value`);
      for (const value of requirement.values) problems.push(...labelValueProblems(value));
    }
  }
  if (problems.length > 0) throw new LabelSelectorSyntaxError(selector, problems);
  return requirements;
}

/** Problems of a label selector; empty when valid. */
export function labelSelectorProblems(selector: string): string[] {
  try {
    parseLabelSelector(selector);
    return [];
  } catch (error) {
    if (error instanceof LabelSelectorSyntaxError) return [...error.problems];
    throw error;
  }
}

/** Whether labels satisfy every requirement (the API server's matching rules). */
export function matchesLabelSelector(
  requirements: readonly LabelRequirement[],
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const have = labels ?? {};
  return requirements.every((requirement) => {
    const present = Object.hasOwn(have, requirement.key);
    switch (requirement.operator) {
      case 'exists':
        return present;
      case 'doesnotexist':
        return !present;
      case 'in':
        return present && requirement.values.includes(have[requirement.key]!);
      case 'notin':
        return !present || !requirement.values.includes(have[requirement.key]!);
    }
  });
}

import { describe, expect, it } from 'vitest';
import { InvalidNodeInputError } from './errors.js';
import {
  labelKeyProblems,
  labelValueProblems,
  nodeNameProblems,
  validateLabels,
  validateNodeName,
  validateTaintRefs,
  validateTaints,
} from './validation.js';

function issuesOf(run: () => unknown) {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidNodeInputError);
    return (error as InvalidNodeInputError).issues;
  }
  throw new Error('expected InvalidNodeInputError');
}

describe('node names (RFC 1123 subdomain)', () => {
  it.each(['node-1', 'ip-10-0-0-1.ec2.internal', 'a', '0', `${'a'.repeat(63)}.${'b'.repeat(63)}`])(
    'accepts %s',
    (name) => {
      expect(nodeNameProblems(name)).toEqual([]);
      expect(validateNodeName(name)).toBe(name);
    },
  );

  it.each(['', 'Node-1', '-node', 'node-', 'node_1', 'node..1', '.node', 'node 1', 'a'.repeat(254)])(
    'refuses %j',
    (name) => {
      expect(nodeNameProblems(name)).toHaveLength(1);
      const [issue] = issuesOf(() => validateNodeName(name));
      expect(issue?.path).toBe('node');
      expect(issue?.message).toContain(name === '' ? 'must not be empty' : 'RFC 1123 subdomain');
    },
  );

  it('refuses a non-string with the field named', () => {
    const [issue] = issuesOf(() => validateNodeName(42, 'toNode'));
    expect(issue?.path).toBe('toNode');
  });
});

describe('label keys and values', () => {
  it.each(['app', 'App_Name.v1', 'example.com/zone', 'kubernetes.io/hostname', `x/${'a'.repeat(63)}`])(
    'accepts key %s',
    (key) => expect(labelKeyProblems(key)).toEqual([]),
  );

  it.each([
    ['', 'must not be empty'],
    ['a/b/c', "one '/'"],
    ['/name', 'prefix before'],
    ['example.com/', 'name part must not be empty'],
    ['Example.com/name', 'RFC 1123 subdomain'],
    ['-app', 'name part'],
    ['app-', 'name part'],
    ['a b', 'name part'],
    ['a'.repeat(64), 'at most 63'],
  ])('refuses key %j (%s)', (key, expected) => {
    const problems = labelKeyProblems(key);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join(' ')).toContain(expected);
  });

  it.each(['', 'v1', 'My_Value.2', 'a'.repeat(63)])('accepts value %j', (value) =>
    expect(labelValueProblems(value)).toEqual([]),
  );

  it.each(['-v', 'v-', 'a b', 'a/b', 'a'.repeat(64)])('refuses value %j', (value) =>
    expect(labelValueProblems(value)).toHaveLength(1),
  );

  it('names every bad key and value of a label set', () => {
    const issues = issuesOf(() => validateLabels({ good: 'ok', 'bad key': 'ok', other: 'bad value!' }));
    expect(issues.map((issue) => issue.path)).toHaveLength(2);
    expect(issues.find((issue) => issue.path === 'labels["bad key"]')?.message).toContain('"bad key"');
    expect(issues.find((issue) => issue.path === 'labels.other')?.message).toContain('"bad value!"');
  });
});

describe('taints', () => {
  it('accepts taints with and without values', () => {
    expect(
      validateTaints([
        { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
        { key: 'example.com/maintenance', effect: 'NoExecute' },
        { key: 'dedicated', value: '', effect: 'PreferNoSchedule' },
      ]),
    ).toHaveLength(3);
  });

  it('refuses a bad effect, key and value, naming each field', () => {
    const issues = issuesOf(() =>
      validateTaints([
        { key: 'ok', effect: 'NoScheduling' },
        { key: 'bad key', value: 'v', effect: 'NoSchedule' },
        { key: 'ok2', value: 'bad value!', effect: 'NoExecute' },
      ]),
    );
    expect(issues.map((issue) => issue.path)).toEqual([
      'taints[0].effect',
      'taints[1].key',
      'taints[2].value',
    ]);
    expect(issues[0]?.message).toContain('NoSchedule, PreferNoSchedule, NoExecute');
    expect(issues[0]?.message).toContain('"NoScheduling"');
  });

  it('refuses the same key and effect twice and unknown fields', () => {
    const duplicate = issuesOf(() =>
      validateTaints([
        { key: 'a', value: '1', effect: 'NoSchedule' },
        { key: 'a', value: '2', effect: 'NoSchedule' },
      ]),
    );
    expect(duplicate).toEqual([{ path: 'taints[1]', message: expect.stringContaining('given twice') }]);
    const unknown = issuesOf(() => validateTaints([{ key: 'a', effect: 'NoSchedule', efect: 'x' }]));
    expect(unknown[0]?.path).toBe('taints[0]');
  });

  it('checks taint references', () => {
    expect(validateTaintRefs([{ key: 'a' }, { key: 'b', effect: 'NoExecute' }])).toHaveLength(2);
    expect(issuesOf(() => validateTaintRefs([{ key: 'a', effect: 'Never' }]))[0]?.path).toBe(
      'taints[0].effect',
    );
  });
});

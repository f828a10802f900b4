import { describe, expect, it } from 'vitest';
import {
  ArgumentSyntaxError,
  parseDurationSeconds,
  parseLabelSpecs,
  parseTaintSpecs,
} from './kubectl-syntax.js';

describe('kubectl syntax', () => {
  it('reads labels to set (key=value, empty value too) and to remove (key-)', () => {
    expect(parseLabelSpecs(['team=blue', 'example.com/tier=', 'legacy-'])).toEqual({
      set: { team: 'blue', 'example.com/tier': '' },
      remove: ['legacy'],
    });
    expect(() => parseLabelSpecs(['=x'])).toThrow(ArgumentSyntaxError);
    expect(() => parseLabelSpecs(['a=1', 'a=2'])).toThrow('label a is given twice');
  });

  it('reads taints to add (key=value:Effect, key:Effect) and to remove (key:Effect-, key-)', () => {
    expect(
      parseTaintSpecs([
        'dedicated=gpu:NoSchedule',
        'maintenance:NoExecute',
        'old:PreferNoSchedule-',
        'stale-',
      ]),
    ).toEqual({
      add: [
        { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
        { key: 'maintenance', effect: 'NoExecute' },
      ],
      remove: [{ key: 'old', effect: 'PreferNoSchedule' }, { key: 'stale' }],
    });
    expect(() => parseTaintSpecs(['dedicated=gpu'])).toThrow('a taint to add needs an effect');
    expect(() => parseTaintSpecs(['dedicated:'])).toThrow('the effect after ":" is empty');
  });

  it('reads durations as kubectl does, in whole seconds', () => {
    expect(parseDurationSeconds('90', '--timeout')).toBe(90);
    expect(parseDurationSeconds('2m30s', '--timeout')).toBe(150);
    expect(parseDurationSeconds('1.5h', '--timeout')).toBe(5400);
    expect(parseDurationSeconds('500ms', '--timeout')).toBe(1);
    expect(() => parseDurationSeconds('5 minutes', '--timeout')).toThrow('--timeout expects a duration');
  });
});

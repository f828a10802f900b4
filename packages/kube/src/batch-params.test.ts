import { describe, expect, it } from 'vitest';
import { validateBatchParams } from './batch-params.js';
import { InvalidNodeInputError } from './errors.js';

function paths(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidNodeInputError);
    return (error as InvalidNodeInputError).issues.map((issue) => issue.path);
  }
  throw new Error('expected InvalidNodeInputError');
}

describe('validateBatchParams', () => {
  it('accepts the params of each action and absent params where none are needed', () => {
    expect(validateBatchParams('cordon', undefined)).toEqual({});
    expect(validateBatchParams('uncordon', {})).toEqual({});
    expect(validateBatchParams('drain', { timeoutSeconds: 60, gracePeriodSeconds: 0 })).toEqual({
      timeoutSeconds: 60,
      gracePeriodSeconds: 0,
    });
    expect(validateBatchParams('label', { set: { 'example.com/zone': 'a' }, remove: ['old'] })).toEqual({
      set: { 'example.com/zone': 'a' },
      remove: ['old'],
    });
    expect(
      validateBatchParams('taint', {
        add: [{ key: 'k', value: 'v', effect: 'NoSchedule' }],
        remove: [{ key: 'gone' }],
        copyFrom: 'node-0',
      }),
    ).toEqual({
      add: [{ key: 'k', value: 'v', effect: 'NoSchedule' }],
      remove: [{ key: 'gone' }],
      copyFrom: 'node-0',
    });
  });

  it('names the wrong field', () => {
    expect(paths(() => validateBatchParams('label', { set: { 'a b': 'x' } }))).toEqual(['params.set["a b"]']);
    expect(paths(() => validateBatchParams('label', { remove: ['ok', '-bad'] }))).toEqual([
      'params.remove[1]',
    ]);
    expect(paths(() => validateBatchParams('taint', { add: [{ key: 'k', effect: 'Sometimes' }] }))).toEqual([
      'params.add[0].effect',
    ]);
    expect(paths(() => validateBatchParams('taint', { copyFrom: 'Not_A_Node' }))).toEqual([
      'params.copyFrom',
    ]);
    expect(paths(() => validateBatchParams('drain', { timeoutSeconds: 0 }))).toEqual([
      'params.timeoutSeconds',
    ]);
    expect(paths(() => validateBatchParams('drain', { timeoutSecs: 10 }))).toEqual(['params']);
    expect(paths(() => validateBatchParams('cordon', { force: true }))).toEqual(['params']);
  });

  it('refuses params that would do nothing or contradict themselves', () => {
    expect(paths(() => validateBatchParams('label', {}))).toEqual(['params']);
    expect(paths(() => validateBatchParams('taint', { add: [] }))).toEqual(['params']);
    expect(paths(() => validateBatchParams('label', { set: { a: '1' }, remove: ['a'] }))).toEqual([
      'params.remove[0]',
    ]);
  });

  it('refuses an unknown action', () => {
    expect(paths(() => validateBatchParams('reboot' as 'cordon', {}))).toEqual(['action']);
  });

  it('puts the field and the rule in the message', () => {
    expect(() => validateBatchParams('label', { set: { ok: 'has space' } })).toThrow(
      /invalid params for label: params\.set\.ok: label value "has space" must be empty or consist/,
    );
  });
});

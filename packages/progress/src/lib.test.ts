import { describe, expect, it } from 'vitest';
import { TransportUnavailableError } from './errors.js';
import {
  TimeoutError,
  backoffDelay,
  causeChain,
  describeError,
  errorMessage,
  sleep,
  withTimeout,
} from './lib.js';

function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('error description', () => {
  it('gives the message of an Error and the string form of anything else', () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('plain')).toBe('plain');
  });

  it('adds the code unless the message names it, and describes the errors of a silent AggregateError', () => {
    expect(describeError(withCode('password authentication failed', '28P01'))).toBe(
      'password authentication failed (28P01)',
    );
    expect(describeError(withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))).toBe(
      'connect ECONNREFUSED 127.0.0.1:1',
    );
    const dualStack = new AggregateError([withCode('v4 refused', 'ECONNREFUSED'), new Error('v6 down')], '');
    expect(describeError(dualStack)).toBe('v4 refused (ECONNREFUSED); v6 down');
  });
});

describe('causeChain', () => {
  it('walks causes outermost first, the errors of an AggregateError before its cause, each once', () => {
    const driver = withCode('refused', 'ECONNREFUSED');
    const v6 = new Error('v6');
    const aggregate = new AggregateError([driver, v6], 'both failed', { cause: driver });
    const wrapper = new TransportUnavailableError('cannot LISTEN', { cause: aggregate });
    expect([...causeChain(wrapper)]).toEqual([wrapper, aggregate, driver, v6]);
  });

  it('ends on a cycle', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect([...causeChain(a)]).toEqual([a, b]);
  });
});

describe('withTimeout', () => {
  it('passes the result through when the promise settles first', async () => {
    await expect(withTimeout(Promise.resolve(7), 60_000, 'answer')).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('own')), 60_000, 'answer')).rejects.toThrow('own');
  });

  it('rejects with a TimeoutError naming what timed out, or with the error given', async () => {
    const never = new Promise<never>(() => undefined);
    const err = await withTimeout(never, 5, 'database check').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toBe('database check timed out after 5 ms');
    await expect(withTimeout(never, 5, () => new RangeError('custom'))).rejects.toThrow(RangeError);
  });
});

describe('backoffDelay', () => {
  it('doubles from the minimum up to the maximum, within the jitter share below the nominal delay', () => {
    const options = { minDelayMs: 100, maxDelayMs: 1_000 };
    expect([0, 1, 2, 3, 4, 10, 5_000].map((attempt) => backoffDelay(attempt, options, () => 1))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000,
    ]);
    expect(backoffDelay(2, options, () => 0)).toBe(200);
    expect(backoffDelay(2, { ...options, jitter: 0.2 }, () => 0)).toBe(320);
    expect(backoffDelay(2, { ...options, jitter: 0 }, () => 0.3)).toBe(400);
  });
});

describe('sleep', () => {
  it('resolves after the time, and rejects with the reason as soon as the signal aborts', async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
    const controller = new AbortController();
    const waiting = sleep(3_600_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    await expect(sleep(1, controller.signal)).rejects.toThrow('stop');
  });
});

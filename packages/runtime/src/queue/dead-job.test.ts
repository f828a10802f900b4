import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { InvalidJobDataError, deadJobOf } from './batch-consumer.js';

const job = (attemptsMade: number, attempts = 20) => ({
  id: 'task-1',
  data: { taskId: 'task-1' },
  attemptsMade,
  opts: { attempts },
});

describe('which failed jobs are dead (their task must get TaskFailed)', () => {
  it('a failure with attempts left is retried, not dead', () => {
    expect(deadJobOf(job(3), new Error('connection terminated'))).toBeNull();
  });

  it('the last attempt is dead, with the last error as the reason', () => {
    expect(deadJobOf(job(20), new Error('connection terminated'))).toEqual({
      jobId: 'task-1',
      taskId: 'task-1',
      code: 'JOB_ATTEMPTS_EXHAUSTED',
      reason: 'connection terminated',
    });
  });

  it('invalid data is dead at once; the task is found by the job id when the data has none', () => {
    const bad = { ...job(1), data: { taskId: 42 } };
    expect(deadJobOf(bad, new InvalidJobDataError('invalid batch job data'))).toMatchObject({
      taskId: 'task-1',
      code: 'INVALID_JOB_DATA',
    });
    expect(deadJobOf(job(1), new UnrecoverableError('no'))).toMatchObject({ code: 'JOB_ATTEMPTS_EXHAUSTED' });
  });

  it('a job that stalled too often is dead', () => {
    expect(deadJobOf(job(0), new Error('job stalled more than allowable limit'))).toMatchObject({
      code: 'JOB_STALLED_TOO_OFTEN',
    });
  });
});

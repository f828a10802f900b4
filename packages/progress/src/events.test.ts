import { describe, expect, it } from 'vitest';
import { StoredEventSchema, isTerminalType } from './events.js';

describe('StoredEventSchema', () => {
  it('accepts a well-formed event and applies data defaults', () => {
    const event = StoredEventSchema.parse({
      taskId: 't1',
      seq: 1,
      position: 10,
      type: 'TaskStarted',
      time: '2026-01-01T00:00:00.000Z',
      data: {},
    });
    expect(event.data).toEqual({ attempt: 1 });
  });

  it('names the event type when data fails its schema', () => {
    const result = StoredEventSchema.safeParse({
      taskId: 't1',
      seq: 2,
      position: 11,
      type: 'NodeProgress',
      time: '2026-01-01T00:00:00.000Z',
      data: { node: 'n1', done: -1, total: 3 },
    });
    expect(result.success).toBe(false);
    expect(result.error?.message).toContain('data of NodeProgress');
  });

  it('knows the terminal types', () => {
    expect(isTerminalType('TaskCompleted')).toBe(true);
    expect(isTerminalType('NodeSucceeded')).toBe(false);
  });
});

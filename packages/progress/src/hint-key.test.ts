import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from './events.js';
import {
  HINT_MAC_LENGTH,
  HintKey,
  HintKeyTooShortError,
  MIN_HINT_KEY_BYTES,
  type SignedHint,
} from './hint-key.js';
import { ev, storedEvents } from './testing/stored-events.js';

const SECRET = 'k'.repeat(MIN_HINT_KEY_BYTES);

function hint(): SignedHint {
  const events = storedEvents(
    'task-1',
    [ev.nodeStarted('n1'), ev.nodeProgress('n1', 1, 2, 'evicted a pod')],
    3,
  );
  return { taskId: 'task-1', seq: 4, events };
}

/** The hint with its second event changed by `change`. */
function withSecondEvent(change: (event: StoredEvent) => StoredEvent): SignedHint {
  const original = hint();
  return { ...original, events: [original.events[0]!, change(original.events[1]!)] };
}

describe('HintKey', () => {
  it('verifies its own MAC of a hint, in a form that fits a notification', () => {
    const key = new HintKey(SECRET);
    const mac = key.sign(hint());
    expect(mac).toMatch(new RegExp(`^[A-Za-z0-9_-]{${HINT_MAC_LENGTH}}$`));
    expect(key.verify(hint(), mac)).toBe(true);
    expect(key.authenticate(hint(), mac)).toBe('verified');
  });

  it('verifies a copy whose data keys come in another order (a parsed payload)', () => {
    const key = new HintKey(SECRET);
    const reordered = withSecondEvent(
      (event) =>
        ({ ...event, data: Object.fromEntries(Object.entries(event.data).reverse()) }) as StoredEvent,
    );
    expect(key.verify(reordered, key.sign(hint()))).toBe(true);
  });

  it.each<[string, SignedHint]>([
    ['the task differs', { ...hint(), taskId: 'task-2' }],
    ['the announced seq differs', { ...hint(), seq: 5 }],
    ['an event is left out', { ...hint(), events: hint().events.slice(1) }],
    ["an event's task differs", withSecondEvent((event) => ({ ...event, taskId: 'task-2' }))],
    ["an event's seq differs", withSecondEvent((event) => ({ ...event, seq: 5 }))],
    ["an event's position differs", withSecondEvent((event) => ({ ...event, position: event.position + 1 }))],
    [
      "an event's type differs",
      withSecondEvent((event) => ({ ...event, type: 'NodeSucceeded' }) as StoredEvent),
    ],
    ["an event's time differs", withSecondEvent((event) => ({ ...event, time: '2030-01-01T00:00:00.000Z' }))],
    [
      "a value in an event's data differs",
      withSecondEvent((event) => ({ ...event, data: { ...event.data, done: 2 } }) as StoredEvent),
    ],
    [
      "a key is added to an event's data",
      withSecondEvent(
        (event) => ({ ...event, data: { ...event.data, extra: true } }) as unknown as StoredEvent,
      ),
    ],
  ])('refuses the MAC of a hint when %s', (_what, changed) => {
    const key = new HintKey(SECRET);
    const mac = key.sign(hint());
    expect(key.verify(changed, mac)).toBe(false);
    expect(key.authenticate(changed, mac)).toBe('invalid');
  });

  it('refuses a MAC made with another key, a malformed MAC, and says when there is none', () => {
    const key = new HintKey(SECRET);
    const other = new HintKey(randomBytes(32));
    const mac = key.sign(hint());
    expect(key.authenticate(hint(), other.sign(hint()))).toBe('invalid');
    for (const malformed of ['', mac.slice(1), `${mac}A`, '!'.repeat(HINT_MAC_LENGTH), mac.toUpperCase()]) {
      expect(key.authenticate(hint(), malformed)).toBe('invalid');
    }
    expect(key.authenticate(hint(), undefined)).toBe('missing');
  });

  it('refuses a key shorter than 32 bytes, naming where it came from', () => {
    // 31 characters but 2 bytes each in UTF-8: long enough.
    expect(() => new HintKey('é'.repeat(16))).not.toThrow();
    const error = (() => {
      try {
        new HintKey('x'.repeat(31), 'PROGRESS_HINT_KEY_FILE');
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(HintKeyTooShortError);
    expect((error as Error).message).toMatch(
      /^PROGRESS_HINT_KEY_FILE is 31 bytes; it must be at least 32 bytes/,
    );
  });

  it('shows no secret when printed or serialized', () => {
    const key = new HintKey(SECRET);
    expect(JSON.stringify({ key })).not.toContain('kkkk');
    expect(inspect(key, { depth: 5, showHidden: true })).not.toContain('kkkk');
    expect(String(key)).not.toContain('kkkk');
  });
});

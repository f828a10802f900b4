import { describe, expect, it } from 'vitest';
import { packPayloads } from './pack-payloads.js';

const frame = { open: '{"tasks":[', close: ']}' };

describe('packPayloads', () => {
  it('packs texts in order into as few as fit, each at most the limit', () => {
    const texts = ['{"a":1}', '{"b":22}', '{"c":3}', '{"d":44}'];
    // Room for the first two with the frame and a comma, not the third.
    const limit = '{"tasks":[{"a":1},{"b":22}]}'.length;
    expect(packPayloads(texts, frame, limit)).toEqual([
      '{"tasks":[{"a":1},{"b":22}]}',
      '{"tasks":[{"c":3},{"d":44}]}',
    ]);
    // One byte less: no two fit together.
    expect(packPayloads(texts, frame, limit - 1)).toEqual(texts);
  });

  it('leaves a text alone in its pack as it is, and packs nothing out of nothing', () => {
    expect(packPayloads(['{"a":1}'], frame, 1000)).toEqual(['{"a":1}']);
    expect(packPayloads([], frame, 1000)).toEqual([]);
  });

  it('counts bytes, not characters', () => {
    // "€" is 3 bytes in UTF-8, 1 UTF-16 unit.
    const texts = ['"€€"', '"€€"'];
    const together = `{"tasks":["€€","€€"]}`;
    expect(packPayloads(texts, frame, Buffer.byteLength(together))).toEqual([together]);
    expect(packPayloads(texts, frame, Buffer.byteLength(together) - 1)).toEqual(texts);
  });
});

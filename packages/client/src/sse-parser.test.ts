import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from './sse-parser.js';

function parse(chunks: readonly string[]): { messages: SseMessage[]; comments: string[]; retries: number[] } {
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = new SseParser({
    onMessage: (message) => messages.push(message),
    onComment: (comment) => comments.push(comment),
    onRetry: (ms) => retries.push(ms),
  });
  for (const chunk of chunks) parser.feed(chunk);
  return { messages, comments, retries };
}

const STREAM =
  '\uFEFFretry: 1000\n: stream open\n\nid: 1\nevent: TaskCreated\ndata: {"seq":1}\n\n' +
  ': heartbeat\n\nid: 2\ndata: line one\ndata:line two\n\nevent: end\ndata: {}\n\n';

const EXPECTED = {
  messages: [
    { id: '1', event: 'TaskCreated', data: '{"seq":1}' },
    { id: '2', event: 'message', data: 'line one\nline two' },
    { id: undefined, event: 'end', data: '{}' },
  ],
  comments: ['stream open', 'heartbeat'],
  retries: [1000],
};

describe('SseParser', () => {
  it('reads messages, ids, event names, multi-line data, comments and retry', () => {
    expect(parse([STREAM])).toEqual(EXPECTED);
  });

  it('gives the same result whatever the chunk boundaries, one character at a time included', () => {
    expect(parse([...STREAM])).toEqual(EXPECTED);
    for (let cut = 1; cut < STREAM.length; cut += 7) {
      expect(parse([STREAM.slice(0, cut), STREAM.slice(cut)])).toEqual(EXPECTED);
    }
  });

  it('accepts CR and CRLF line ends, a CRLF split across chunks counting as one line end', () => {
    const crlf = STREAM.replaceAll('\n', '\r\n');
    expect(parse([crlf])).toEqual(EXPECTED);
    expect(parse([...crlf])).toEqual(EXPECTED);
    expect(parse([STREAM.replaceAll('\n', '\r')])).toEqual(EXPECTED);
  });

  it('reads LF, CRLF and CR line ends mixed in one chunk', () => {
    const endings = ['\n', '\r\n', '\r'];
    for (let shift = 0; shift < endings.length; shift++) {
      const lines = STREAM.split('\n');
      const last = lines.pop();
      // A CR before an empty LF-ended line would read as one CRLF: that line ends with CRLF instead.
      const mixed =
        lines
          .map((line, i) => {
            const ending = endings[(i + shift) % endings.length]!;
            return line + (ending === '\r' && lines[i + 1] === '' ? '\r\n' : ending);
          })
          .join('') + last;
      expect(parse([mixed])).toEqual(EXPECTED);
    }
  });

  it('does not dispatch a message that has no data line, nor one not yet ended by a blank line', () => {
    expect(parse(['id: 7\nevent: ping\n\n', 'id: 8\ndata: half']).messages).toEqual([]);
  });
});

/** The text around a packed list: `{"tasks":[` and `]}`, say. */
export interface PackFrame {
  open: string;
  close: string;
}

/**
 * Packs notification texts, in order, into as few `open a,b,... close` texts
 * of at most `maxBytes` (UTF-8) as they fit in; a text alone in its pack is
 * left as it is, so that one task's notification keeps its own format. The
 * transports combine the notifications of one transaction with it
 * (PROGRESS_COMBINED_HINTS). A text too large for any pack gets one of its
 * own; the caller keeps each under the limit.
 */
export function packPayloads(payloads: readonly string[], frame: PackFrame, maxBytes: number): string[] {
  const frameBytes = Buffer.byteLength(frame.open) + Buffer.byteLength(frame.close);
  const packed: string[] = [];
  let pack: string[] = [];
  let packBytes = frameBytes;
  const flush = (): void => {
    if (pack.length === 1) packed.push(pack[0]!);
    else if (pack.length > 1) packed.push(`${frame.open}${pack.join(',')}${frame.close}`);
    pack = [];
    packBytes = frameBytes;
  };
  for (const payload of payloads) {
    const bytes = Buffer.byteLength(payload, 'utf8');
    // Every text after the first comes with a comma.
    if (pack.length > 0 && packBytes + 1 + bytes > maxBytes) flush();
    packBytes += bytes + (pack.length > 0 ? 1 : 0);
    pack.push(payload);
  }
  flush();
  return packed;
}

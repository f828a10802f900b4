import type { EventReader } from '@nodebatch/progress';

export type ReaderMethod = 'readTask' | 'readAll' | 'latestSeqs' | 'headPosition';

/**
 * The real store with a count of the queries made through it, so tests can
 * assert how many queries a poll costs without server-side statistics.
 */
export function countingReader(store: EventReader): {
  reader: EventReader;
  calls: Record<ReaderMethod, number>;
  total(): number;
} {
  const calls: Record<ReaderMethod, number> = { readTask: 0, readAll: 0, latestSeqs: 0, headPosition: 0 };
  const reader: EventReader = {
    readTask: (...args) => (calls.readTask++, store.readTask(...args)),
    readAll: (...args) => (calls.readAll++, store.readAll(...args)),
    latestSeqs: (...args) => (calls.latestSeqs++, store.latestSeqs(...args)),
    headPosition: () => (calls.headPosition++, store.headPosition()),
  };
  return {
    reader,
    calls,
    total: () => calls.readTask + calls.readAll + calls.latestSeqs + calls.headPosition,
  };
}

/** Upper-case without separators: PROGRESS_NOTIFYTYPE and PROGRESS_NOTIFY_TYPE are the same word. */
function normalise(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** WORKER_CONCURRENCY for WORKER_JOB_CONCURRENCY: every word of one is in the other, which has one more. */
function sameWordsButOne(a: string, b: string): boolean {
  const [fewer, more] = [a, b]
    .map((name) =>
      name
        .toUpperCase()
        .split(/[^A-Z0-9]+/)
        .filter(Boolean),
    )
    .sort((x, y) => x.length - y.length) as [string[], string[]];
  return fewer.length >= 2 && more.length === fewer.length + 1 && fewer.every((word) => more.includes(word));
}

/**
 * The candidate `name` was most likely meant as, or undefined when none is
 * close: same letters without separators, a prefix or extension of it
 * (DB_HOSTNAME, DB_PASS), the same words but one, or at most two typos.
 */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  const wanted = normalise(name);
  let best: { candidate: string; score: number } | undefined;
  for (const candidate of candidates) {
    const other = normalise(candidate);
    let score: number;
    if (other === wanted) score = 0;
    else if (
      (wanted.startsWith(other) || other.startsWith(wanted)) &&
      Math.abs(other.length - wanted.length) <= 5
    )
      score = 1 + Math.abs(other.length - wanted.length) / 10;
    else if (sameWordsButOne(name, candidate)) score = 2;
    else {
      const distance = editDistance(wanted, other);
      if (distance > 2) continue;
      score = 2 + distance;
    }
    if (!best || score < best.score) best = { candidate, score };
  }
  return best?.candidate;
}

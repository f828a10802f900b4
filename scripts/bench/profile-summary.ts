/**
 * Summarises V8 CPU profiles written by `pnpm bench --cpu-profile`: self time
 * by function and by package, so that a missed target can be traced to the
 * code that limits it.
 *   node --import tsx scripts/bench/profile-summary.ts <file.cpuprofile>... [--top N]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { selfTimes, type CpuProfile } from './cpu-profile.js';

/** Where a script lives, coarsely: a workspace package, a dependency, or Node itself. */
function owner(url: string): string {
  if (!url) return '(native/gc/idle)';
  if (url.startsWith('node:')) return 'node';
  const dependency = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dependency) return dependency[1]!;
  const workspace = /\/(packages|services)\/([^/]+)\//.exec(url);
  if (workspace) return `${workspace[1]}/${workspace[2]}`;
  return url.replace(/^file:\/\//, '');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '15' } },
});
const top = Number(values.top);

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byFunction = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const frame of selfTimes(profile)) {
    if (frame.functionName === '(idle)') {
      idle += frame.us;
      continue;
    }
    total += frame.us;
    const key = `${frame.functionName || '(anonymous)'} ${owner(frame.url)}:${frame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + frame.us);
    byOwner.set(owner(frame.url), (byOwner.get(owner(frame.url)) ?? 0) + frame.us);
  }
  const rows = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([name, us]) =>
          `  ${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`,
      )
      .join('\n');
  process.stdout.write(
    `${file}: ${(total / 1000).toFixed(0)} ms busy, ${(idle / 1000).toFixed(0)} ms idle\n by package:\n${rows(byOwner)}\n by function (self time):\n${rows(byFunction)}\n\n`,
  );
}

// How the test command reads Vitest's JSON reports: the counts of the final
// line, and the rules that turn a quiet gap into a failure (a package that ran
// no test, a skip nobody allowed).
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Vitest's statuses of a test that did not run. */
const SKIPPED_STATUSES = new Set(['pending', 'skipped', 'todo', 'disabled']);

/**
 * The skips a run may have, from a file `{ "skips": [{ "id", "reason" }] }`,
 * where an id is `<file from the repository root> > <describe> > … > <test>`.
 * @param {string} file
 * @returns {Map<string, string>} id → reason
 */
export function readAllowedSkips(file) {
  const { skips } = JSON.parse(readFileSync(file, 'utf8'));
  const valid =
    Array.isArray(skips) &&
    skips.every(
      (skip) => typeof skip?.id === 'string' && typeof skip?.reason === 'string' && skip.reason.trim() !== '',
    );
  if (!valid)
    throw new Error(`${file}: "skips" must be a list of { "id": string, "reason": non-empty string }`);
  return new Map(skips.map((skip) => [skip.id, skip.reason]));
}

/**
 * Sums the reports of every workspace directory that has a test script.
 * Counted as a failure besides the failed tests: a missing report, a file
 * that failed to load, a package that ran no test, a skip not in
 * `allowedSkips` and, on CI, every skip (CI must run every test).
 * @param {{ root: string, dirs: string[], allowedSkips: Map<string, string>, onCi: boolean,
 *   log?: (message: string) => void }} options
 * @returns {{ passed: number, failed: number, skipped: number }}
 */
export function summariseReports({
  root,
  dirs,
  allowedSkips,
  onCi,
  log = (message) => console.error(message),
}) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const dir of dirs.filter((dir) => hasTestScript(join(root, dir)))) {
    const report = join(root, dir, '.vitest', 'report.json');
    if (!existsSync(report)) {
      log(`[test] ${dir}: no Vitest report was written (the runner crashed or did not start)`);
      failed += 1;
      continue;
    }
    const data = JSON.parse(readFileSync(report, 'utf8'));
    passed += data.numPassedTests ?? 0;
    failed += data.numFailedTests ?? 0;
    skipped += (data.numPendingTests ?? 0) + (data.numTodoTests ?? 0);
    // Tests deleted, or no longer matched by the include pattern: the package must not pass quietly.
    if ((data.numTotalTests ?? 0) === 0) {
      log(`[test] ${dir}: has a test script but ran no test`);
      failed += 1;
    }
    for (const file of data.testResults ?? []) {
      // A file that failed with no failed test (it failed to load, or a
      // beforeAll/afterAll hook failed or timed out) counts once, or a broken
      // import or a hanging teardown would look like a green run.
      if (
        file.status === 'failed' &&
        !(file.assertionResults ?? []).some((test) => test.status === 'failed')
      ) {
        log(`[test] ${relative(root, file.name)} failed outside its tests: ${file.message ?? 'no message'}`);
        failed += 1;
      }
      for (const test of file.assertionResults ?? []) {
        if (!SKIPPED_STATUSES.has(test.status)) continue;
        const id = [relative(root, file.name), ...(test.ancestorTitles ?? []), test.title].join(' > ');
        if (onCi) {
          log(`[test] skipped on CI, which must run every test: ${id}`);
          failed += 1;
        } else if (!allowedSkips.has(id)) {
          log(`[test] skipped and not allowed by test-skips.json: ${id}`);
          failed += 1;
        } else {
          log(`[test] skipped (${allowedSkips.get(id)}): ${id}`);
        }
      }
    }
  }
  return { passed, failed, skipped };
}

/** @param {string} dir */
function hasTestScript(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return Boolean(manifest.scripts?.test);
}

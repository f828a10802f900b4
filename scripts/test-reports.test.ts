import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of the test command, without types.
import { readAllowedSkips, summariseReports } from './test-reports.mjs';

const VITEST = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));

/*
 * Each workspace below is run by the real Vitest with the JSON reporter the
 * test command reads, so the rules are checked against the reports Vitest
 * actually writes (statuses, titles, counts), not against a shape typed here.
 */
let root: string;

function workspace(dir: string, files: Record<string, string>, testScript = true): void {
  mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(
    join(root, dir, 'package.json'),
    JSON.stringify({ name: dir, type: 'module', scripts: testScript ? { test: 'vitest run' } : {} }),
  );
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, dir, name), text);
  if (!testScript) return;
  spawnSync(
    process.execPath,
    [VITEST, 'run', '--globals', '--passWithNoTests', '--reporter=json', '--outputFile=.vitest/report.json'],
    { cwd: join(root, dir), encoding: 'utf8', timeout: 120_000 },
  );
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nb-test-reports-'));
  workspace('green', { 'a.test.js': "it('adds', () => expect(1 + 1).toBe(2));\n" });
  workspace('skips', {
    'b.test.js': [
      "describe('the page', () => {",
      "  it.skip('renders', () => {});",
      '});',
      "it.skipIf(true)('on a machine without X', () => {});",
      "it('runs', () => {});",
      '',
    ].join('\n'),
  });
  workspace('emptied', { 'README.md': 'its tests were deleted\n' });
  workspace('failing-hook', {
    'c.test.js': [
      "it('passes', () => {});",
      "afterAll(() => { throw new Error('teardown failed'); });",
      '',
    ].join('\n'),
  });
  workspace('no-script', {}, false);
}, 240_000);

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function summarise(dirs: string[], options: { allowed?: [string, string][]; onCi?: boolean } = {}) {
  const messages: string[] = [];
  const counts = summariseReports({
    root,
    dirs,
    allowedSkips: new Map(options.allowed ?? []),
    onCi: options.onCi ?? false,
    log: (message: string) => messages.push(message),
  }) as { passed: number; failed: number; skipped: number };
  return { counts, messages };
}

describe('the test command reading Vitest reports', () => {
  it('counts a green package as passed, and ignores a workspace without a test script', () => {
    expect(summarise(['green', 'no-script'])).toEqual({
      counts: { passed: 1, failed: 0, skipped: 0 },
      messages: [],
    });
  });

  it('fails a file whose tests passed but whose afterAll hook failed, naming it', () => {
    const { counts, messages } = summarise(['failing-hook']);
    expect(counts).toEqual({ passed: 1, failed: 1, skipped: 0 });
    expect(messages).toEqual([
      expect.stringMatching(/^\[test\] failing-hook\/c\.test\.js failed outside its tests: /),
    ]);
  });

  it('fails a package that has a test script and ran no test', () => {
    const { counts, messages } = summarise(['emptied']);
    expect(counts.failed).toBe(1);
    expect(messages).toEqual(['[test] emptied: has a test script but ran no test']);
  });

  it('fails every skip that is not on the allowlist, naming it', () => {
    const { counts, messages } = summarise(['skips'], {
      allowed: [['skips/b.test.js > the page > renders', 'needs a browser']],
    });
    expect(counts).toEqual({ passed: 1, failed: 1, skipped: 2 });
    expect(messages).toEqual([
      '[test] skipped (needs a browser): skips/b.test.js > the page > renders',
      '[test] skipped and not allowed by test-skips.json: skips/b.test.js > on a machine without X',
    ]);
  });

  it('fails every skip on CI, allowed or not', () => {
    const { counts } = summarise(['skips'], {
      allowed: [
        ['skips/b.test.js > the page > renders', 'needs a browser'],
        ['skips/b.test.js > on a machine without X', 'needs X'],
      ],
      onCi: true,
    });
    expect(counts).toEqual({ passed: 1, failed: 2, skipped: 2 });
  });

  it("reads the repository's allowlist, and refuses an entry without a reason", () => {
    const allowed = readAllowedSkips(fileURLToPath(new URL('../test-skips.json', import.meta.url))) as Map<
      string,
      string
    >;
    expect([...allowed.keys()].every((id) => id.includes(' > '))).toBe(true);
    const bad = join(root, 'bad-skips.json');
    writeFileSync(bad, JSON.stringify({ skips: [{ id: 'x > y', reason: ' ' }] }));
    expect(() => readAllowedSkips(bad)).toThrow(/"skips" must be a list of \{ "id": string, "reason"/);
  });
});

/// <reference lib="dom" />
// The callbacks given to waitForFunction and evaluate run in the page.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, sharedRedisUrl, uniqueName } from '@nodebatch/testkit';
import type { TestDatabase } from '@nodebatch/testkit';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SERVICES_START_TIMEOUT_MS,
  SERVICES_STOP_TIMEOUT_MS,
  serviceEnv,
  spawnService,
  tokenFor,
} from './services.js';
import type { ServiceProcess } from './services.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../.artifacts/', import.meta.url));

/** CI must test the page: there a browser that cannot be had fails the run instead of skipping it. */
const ON_CI = Boolean(process.env.CI) && process.env.CI !== 'false';

function apt(args: string[], timeoutMs: number): string | undefined {
  const result = spawnSync('apt-get', args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.status === 0) return undefined;
  return `apt-get ${args.join(' ')} failed: ${(result.stderr || String(result.error ?? `exit ${String(result.status)}`)).slice(-500)}`;
}

/**
 * Debian's chromium, installed on the spot when missing and we may; otherwise
 * why it cannot be. The package lists are refreshed first: on a fresh
 * machine they are empty or stale, and install alone finds nothing.
 */
function findChromium(): { path: string } | { reason: string } {
  if (existsSync(CHROMIUM)) return { path: CHROMIUM };
  if (process.getuid?.() !== 0) return { reason: `${CHROMIUM} is missing and installing it needs root` };
  const failure = apt(['update'], 300_000) ?? apt(['install', '-y', 'chromium'], 600_000);
  if (existsSync(CHROMIUM)) return { path: CHROMIUM };
  return { reason: failure ?? `apt-get install -y chromium succeeded but ${CHROMIUM} is still missing` };
}

const found = findChromium();
if ('reason' in found) {
  console.warn(
    ON_CI
      ? `the browser test fails: ${found.reason}`
      : `skipping the browser test (allowed off CI by test-skips.json): ${found.reason}`,
  );
}

// 20 simulated nodes, all carrying the label the console filters by.
const NODES = 20;
const LABEL_FILTER = 'nodebatch.dev/simulated=true';

let db: TestDatabase;
let worker: ServiceProcess;
let gatewayA: ServiceProcess;
let gatewayB: ServiceProcess;
let browser: Browser;
let env: Record<string, string>;

/** Console errors and uncaught exceptions of a page, with when they happened. */
interface PageProblems {
  list: { at: number; text: string }[];
}

function watchProblems(page: Page): PageProblems {
  const problems: PageProblems = { list: [] };
  page.on('pageerror', (err) => problems.list.push({ at: Date.now(), text: `uncaught: ${err.message}` }));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.list.push({ at: Date.now(), text: message.text() });
  });
  return problems;
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.locator('#token').fill(token);
  await page.locator('#sign-in').click();
  await page.locator('#who').waitFor();
}

/** The id of the task the console shows, once it is not `previous`. */
async function openTaskId(page: Page, previous?: string): Promise<string> {
  const handle = await page.waitForFunction(
    (before) => {
      const id = document.querySelector('section.task')?.getAttribute('data-task-id');
      return id && id !== before ? id : null;
    },
    previous ?? null,
    { timeout: 30_000 },
  );
  return (await handle.jsonValue()) as string;
}

async function waitForTaskStatus(page: Page, taskId: string, status: string, timeout = 120_000) {
  await page.waitForFunction(
    ([id, wanted]) =>
      document.querySelector(`section.task[data-task-id="${id}"]`)?.getAttribute('data-status') === wanted,
    [taskId, status] as const,
    { timeout },
  );
}

/** Each node row of the open task: name, final status, latest message and a dry run's plan. */
function nodeRows(page: Page) {
  return page.locator('section.task tr.node-row').evaluateAll((rows) =>
    rows.map((row) => {
      const planned = (kind: string) =>
        Array.from(row.querySelectorAll(`[data-plan="${kind}"]`), (item) => item.textContent?.trim() ?? '');
      return {
        node: row.getAttribute('data-node'),
        status: row.getAttribute('data-node-status'),
        message: row.querySelector('td.message')?.textContent?.trim() ?? '',
        evict: planned('evict'),
        left: planned('left'),
        blocked: planned('blocked'),
      };
    }),
  );
}

describe.skipIf('reason' in found && !ON_CI)('the operator console in headless Chromium', () => {
  beforeAll(async () => {
    if ('reason' in found) throw new Error(`no browser to test the page with: ${found.reason}`);
    db = await createTestDatabase({ prefix: 'e2e_browser' });
    env = serviceEnv(db.url, {
      REDIS_URL: sharedRedisUrl(),
      QUEUE_NAME: uniqueName('e2e_browser_q'),
      NODEBATCH_SIM_NODES: String(NODES),
      // Two simulated clusters: the console picks one; `lab` is the default.
      NODEBATCH_CLUSTERS: 'lab;mode=simulated;default,lab2;mode=simulated',
      // Slow enough that gateway B can be killed and restarted while the drain runs.
      NODEBATCH_SIM_LATENCY_MS: '300',
      WORKER_SHUTDOWN_GRACE_MS: '1000',
    });
    // Each listed cluster says its own mode.
    delete env.NODEBATCH_CLUSTER;
    worker = await spawnService('worker', env);
    [gatewayA, gatewayB] = await Promise.all([spawnService('gateway', env), spawnService('gateway', env)]);
    browser = await chromium.launch({
      executablePath: (found as { path: string }).path,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, SERVICES_START_TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
    await Promise.all([gatewayA?.stop(), gatewayB?.stop(), worker?.stop()]);
    await db?.drop();
  }, SERVICES_STOP_TIMEOUT_MS);

  it('selects nodes by label, dry-runs and drains them, follows every node on the other gateway, cancels a task, labels and copies taints, shows a refusal, and offers each role only its actions', async () => {
    const admin = await tokenFor('alice', 'admin');
    const urlA = gatewayA.ready.gatewayUrl as string;
    const urlB = gatewayB.ready.gatewayUrl as string;
    const pageA = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const pageB = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problemsA = watchProblems(pageA);
    const problemsB = watchProblems(pageB);
    await signIn(pageA, urlA, admin);
    await signIn(pageB, urlB, admin);
    expect(await pageA.locator('#who').getAttribute('data-role')).toBe('admin');

    // A selector the API refuses: the message is shown next to the selector field.
    await pageA.locator('#node-selector').fill('pool in (');
    await pageA.locator('#node-apply').click();
    await expect.poll(() => pageA.locator('#node-selector-error').textContent()).toMatch(/selector/i);

    // Select by the label filter: every node it shows.
    await pageA.locator('#node-selector').fill(LABEL_FILTER);
    await pageA.locator('#node-apply').click();
    await expect.poll(() => pageA.locator('#node-count').textContent()).toMatch(`${NODES} of ${NODES} shown`);
    await expect.poll(() => pageA.locator('#node-selector-error').count()).toBe(0);
    await pageA.locator('#select-filtered').check();
    await expect.poll(() => pageA.locator('#selected-count').textContent()).toBe(`${NODES} selected`);

    // Drain: a field the API refuses is named next to that field, and nothing starts.
    await pageA.locator('#tab-drain').click();
    await pageA.locator('#drain-pod-selector').fill('app in (');
    await pageA.locator('#run-dry-run').click();
    await expect
      .poll(() => pageA.locator('#drain-pod-selector-error').textContent())
      .toMatch(/body\.params\.podSelector/);
    expect(await pageA.locator('section.task').count()).toBe(0);
    await pageA.locator('#drain-pod-selector').fill('');

    // The dry run: per node, the pods it would evict, the DaemonSet pod it leaves and that nothing
    // blocks it (sim-node-N runs app-N-1 … app-N-(2 + N % 3) and its node agent); nothing changes.
    await pageA.locator('#run-dry-run').click();
    const dryRunId = await openTaskId(pageA);
    await waitForTaskStatus(pageA, dryRunId, 'completed');
    const dryRows = await nodeRows(pageA);
    expect(dryRows).toHaveLength(NODES);
    for (const row of dryRows) {
      const index = Number(row.node!.replace('sim-node-', ''));
      const apps = Array.from({ length: 2 + (index % 3) }, (_, pod) => `default/app-${index}-${pod + 1}`);
      expect(row).toMatchObject({
        status: 'succeeded',
        evict: apps,
        left: [`kube-system/node-agent-${row.node!} — daemonset`],
        blocked: [],
      });
      expect(row.message).toMatch(/nothing blocks the drain/);
    }
    expect(await pageA.locator('section.task h2').textContent()).toMatch(/drain \(dry run\)/);
    expect(await pageA.locator('section.task .badge.simulated').count()).toBe(1);

    // The drain itself, offered for the dry run's nodes, two at a time so that it runs long enough
    // for gateway B to restart.
    await pageA.locator('#action-concurrency').fill('2');
    await pageA.locator('#action-reason').fill('kernel upgrade');
    expect(await pageA.locator('#run-planned-drain').textContent()).toMatch(`on the ${NODES} nodes of the`);
    await pageA.locator('#run-planned-drain').click();
    const drainId = await openTaskId(pageA, dryRunId);

    // Page B, on the other gateway, opens the drain from its history.
    await pageB.locator(`[data-history-task="${drainId}"]`).click({ timeout: 30_000 });
    await pageB.waitForFunction(
      (id) => {
        const task = document.querySelector(`section.task[data-task-id="${id}"]`);
        return (
          Number(task?.getAttribute('data-last-seq')) >= 5 && task?.getAttribute('data-status') === 'running'
        );
      },
      drainId,
      { timeout: 60_000 },
    );
    // Gateway B dies while page B follows the drain, and comes back on the same address: the page
    // resumes by itself after the last seq it folded, and neither loses nor repeats a step.
    const restartStarted = Date.now();
    const portB = String(gatewayB.ready.port);
    await gatewayB.kill();
    gatewayB = await spawnService('gateway', { ...env, PORT: portB });

    for (const page of [pageA, pageB]) {
      await waitForTaskStatus(page, drainId, 'completed');
      const rows = await nodeRows(page);
      expect(rows).toHaveLength(NODES);
      for (const row of rows) {
        expect(row.status).toBe('succeeded');
        expect(row.message).toMatch(/pod\(s\) evicted and gone/);
      }
      const task = page.locator('section.task');
      expect(await task.getAttribute('data-percent')).toBe('100');
      expect(await task.getAttribute('data-succeeded')).toBe(String(NODES));
      expect(await task.getAttribute('data-duplicates')).toBe('0');
      expect(await page.locator('section.task [data-outcome="completed"]').textContent()).toMatch(
        `${NODES} succeeded, 0 failed, 0 skipped`,
      );
    }
    const restartEnded = Date.now();
    // The console as the README shows it: the selection, the drain form and the finished drain.
    mkdirSync(ARTIFACTS, { recursive: true });
    await pageA.screenshot({ path: `${ARTIFACTS}console-drain-1280.png` });
    // The pages folded every event once: they end on the log's last seq, as the API says.
    const state = (await (
      await fetch(`${urlB}/api/v1/tasks/${drainId}`, { headers: { authorization: `Bearer ${admin}` } })
    ).json()) as { lastSeq: number; succeeded: number; reason: string };
    expect(state).toMatchObject({ succeeded: NODES, reason: 'kernel upgrade' });
    for (const page of [pageA, pageB]) {
      const task = page.locator('section.task');
      expect(await task.getAttribute('data-last-seq')).toBe(String(state.lastSeq));
      // Folded from seq 1: every event was applied once, whatever the restart did.
      expect(await task.getAttribute('data-applied')).toBe(String(state.lastSeq));
    }

    // A second task, cancelled from the console while it runs.
    await pageA.locator('#tab-cordon').click();
    await pageA.locator('#action-concurrency').fill('1');
    await pageA.locator('#run-action').click();
    const cordonId = await openTaskId(pageA, drainId);
    await pageA.locator('section.task button.cancel').click();
    await waitForTaskStatus(pageA, cordonId, 'cancelled');
    expect(await pageA.locator('section.task [data-outcome="cancelled"]').textContent()).toMatch(
      /Cancelled by alice/,
    );
    expect(await pageA.locator('section.task button.cancel').count()).toBe(0);

    // Labels from rows of key and value: a key the API refuses is named under the rows; then set.
    await pageA.locator('#tab-label').click();
    await pageA.locator('#label-key-0').fill('bad key!');
    await pageA.locator('#label-value-0').fill('blue');
    await pageA.locator('#run-action').click();
    await expect
      .poll(() => pageA.locator('.action-form .field-error').first().textContent())
      .toMatch(/body\.params\.set/);
    // Next to the rows, not as the form's general error.
    expect(await pageA.locator('.action-form .form-error').count()).toBe(0);
    await pageA.locator('#label-key-0').fill('team');
    await pageA.locator('#run-action').click();
    const labelId = await openTaskId(pageA, cordonId);
    await waitForTaskStatus(pageA, labelId, 'completed');
    expect(await pageA.locator('section.task').getAttribute('data-succeeded')).toBe(String(NODES));

    // Copy taints from a node picked in the list, replacing the targets' own.
    await pageA.locator('#tab-copy-taints').click();
    await pageA.locator('#copy-from-picker').selectOption('sim-node-1');
    expect(await pageA.locator('#copy-from').inputValue()).toBe('sim-node-1');
    await pageA.locator('input[name="copy-mode"][value="replace"]').check();
    await pageA.locator('#run-action').click();
    const copyId = await openTaskId(pageA, labelId);
    await waitForTaskStatus(pageA, copyId, 'completed');
    const copy = (await (
      await fetch(`${urlA}/api/v1/tasks/${copyId}`, { headers: { authorization: `Bearer ${admin}` } })
    ).json()) as { action: string; params: unknown };
    expect(copy).toMatchObject({ action: 'taint', params: { copyFrom: 'sim-node-1', mode: 'replace' } });

    await pageB.screenshot({ path: `${ARTIFACTS}console-1280.png`, fullPage: true });
    await pageB.setViewportSize({ width: 390, height: 844 });
    await pageB.screenshot({ path: `${ARTIFACTS}console-phone.png`, fullPage: true });
    // At phone width nothing is wider than the screen but the tables, which scroll in their box.
    expect(await pageB.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

    // An operator is offered no drain, and a label under a protected prefix is refused with the rule.
    const operator = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problemsOperator = watchProblems(operator);
    await signIn(operator, urlA, await tokenFor('olga', 'operator'));
    await operator.locator('[data-node-row]').first().waitFor();
    expect(await operator.locator('[role="tab"]').allTextContents()).toEqual([
      'Cordon',
      'Uncordon',
      'Labels',
      'Taints',
      'Copy taints',
    ]);
    await operator.locator('[aria-label="select sim-node-3"]').check();
    await operator.locator('#tab-label').click();
    await operator.locator('#label-key-0').fill('node-role.kubernetes.io/gpu');
    await operator.locator('#run-action').click();
    await expect
      .poll(() => operator.locator('.action-form .form-error').textContent())
      .toMatch(/^Refused: role operator may not change the label "node-role\.kubernetes\.io\/gpu"/);
    expect(await operator.locator('section.task').count()).toBe(0);

    // A viewer sees the nodes and the tasks, and no action to run.
    const viewer = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problemsViewer = watchProblems(viewer);
    await signIn(viewer, urlA, await tokenFor('victor', 'viewer'));
    expect(await viewer.locator('#who').getAttribute('data-role')).toBe('viewer');
    await viewer.locator('[data-node-row]').first().waitFor();
    expect(await viewer.locator('section.actions').count()).toBe(0);
    expect(await viewer.locator('#run-action, #run-dry-run, [role="tab"], button.cancel').count()).toBe(0);
    // Signing out forgets the token: the console asks for one again.
    await viewer.locator('#sign-out').click();
    await viewer.locator('#token').waitFor();
    expect(await viewer.evaluate(() => sessionStorage.getItem('nodebatch_token'))).toBeNull();

    // No console error anywhere, except what the test caused: Chromium logs the three requests it
    // made refuse (the bad selector, pod selector and label key), and page B's failed connections
    // while its gateway was down.
    const refused = (problem: { text: string }) => /status of 400 \(Bad Request\)/.test(problem.text);
    expect(problemsA.list.filter(refused)).toHaveLength(3);
    expect(problemsA.list.filter((problem) => !refused(problem))).toEqual([]);
    expect(problemsViewer.list).toEqual([]);
    expect(problemsOperator.list.map((problem) => problem.text)).toEqual([
      expect.stringMatching(/status of 403 \(Forbidden\)/),
    ]);
    expect(
      problemsB.list.filter(
        (problem) =>
          problem.at < restartStarted ||
          problem.at > restartEnded ||
          !/ERR_CONNECTION_REFUSED|Failed to load resource|EventSource/.test(problem.text),
      ),
    ).toEqual([]);
  }, 300_000);

  it('picks a cluster: shows its nodes, cordons one there, and the task names that cluster', async () => {
    const admin = await tokenFor('carla', 'admin');
    const urlA = gatewayA.ready.gatewayUrl as string;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = watchProblems(page);
    await signIn(page, urlA, admin);
    // The default cluster first; the picker lists both.
    expect(await page.locator('#cluster').inputValue()).toBe('lab');
    expect(
      await page
        .locator('#cluster option')
        .evaluateAll((options) => options.map((o) => o.getAttribute('value'))),
    ).toEqual(['lab', 'lab2']);
    await expect.poll(() => page.locator('#node-count').textContent()).toMatch(`cluster lab`);
    await page.locator('[aria-label="select sim-node-7"]').check();
    // Another cluster: its own nodes (as the inventory answered for it), and no selection carried over.
    await page.locator('#cluster').selectOption('lab2');
    await expect
      .poll(() => page.locator('#node-count').textContent())
      .toMatch(`${NODES} of ${NODES} shown · cluster lab2`);
    expect(new Set(await page.locator('[data-node-row] td.cluster').allTextContents())).toEqual(
      new Set(['lab2']),
    );
    expect(await page.locator('#selected-count').textContent()).toBe('0 selected');

    await page.locator('[aria-label="select sim-node-7"]').check();
    await page.locator('#tab-cordon').click();
    await page.locator('#run-action').click();
    const taskId = await openTaskId(page);
    await waitForTaskStatus(page, taskId, 'completed');
    expect(await page.locator('section.task .task-meta').textContent()).toMatch(/cluster lab2/);
    const task = (await (
      await fetch(`${urlA}/api/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${admin}` } })
    ).json()) as { cluster: string; clusterMode: string; nodes: string[]; succeeded: number };
    // The batch named lab2, and a worker ran it there.
    expect(task).toMatchObject({
      cluster: 'lab2',
      clusterMode: 'simulated',
      nodes: ['sim-node-7'],
      succeeded: 1,
    });
    expect(problems.list).toEqual([]);
  }, 120_000);
});

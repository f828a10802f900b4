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
import { SERVICES_START_TIMEOUT_MS, SERVICES_STOP_TIMEOUT_MS, serviceEnv, spawnService } from './services.js';
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

// 30 nodes asked for, 27 exist in the simulated cluster: 3 fail with NODE_NOT_FOUND.
const EXISTING_NODES = 27;
const REQUESTED_NODES = 30;

let db: TestDatabase;
let worker: ServiceProcess;
let gatewayA: ServiceProcess;
let gatewayB: ServiceProcess;
let browser: Browser;
let env: Record<string, string>;

describe.skipIf('reason' in found && !ON_CI)('the live progress page in headless Chromium', () => {
  beforeAll(async () => {
    if ('reason' in found) throw new Error(`no browser to test the page with: ${found.reason}`);
    db = await createTestDatabase({ prefix: 'e2e_browser' });
    env = serviceEnv(db.url, {
      REDIS_URL: sharedRedisUrl(),
      QUEUE_NAME: uniqueName('e2e_browser_q'),
      NODEBATCH_SIM_NODES: String(EXISTING_NODES),
      // Slow enough that gateway B can be killed and restarted while the batch runs.
      NODEBATCH_SIM_LATENCY_MS: '400',
      WORKER_SHUTDOWN_GRACE_MS: '1000',
      // The page is the demo's: no token to type.
      AUTH_DISABLED: 'true',
    });
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

  async function taskCard(page: Page, taskId: string) {
    const card = page.locator(`[data-task-id="${taskId}"]`);
    await card.waitFor({ timeout: 60_000 });
    return card;
  }

  it('a batch started on gateway A reaches 100% on A and on a page watching gateway B, with the right counts', async () => {
    const pageA = await browser.newPage();
    const pageB = await browser.newPage();
    const pageErrors: string[] = [];
    for (const page of [pageA, pageB]) page.on('pageerror', (err) => pageErrors.push(err.message));
    await pageA.goto(gatewayA.ready.gatewayUrl as string);
    await pageB.goto(gatewayB.ready.gatewayUrl as string);

    await pageA.selectOption('#action', 'cordon');
    await pageA.fill('#nodes', `sim-node-1..${REQUESTED_NODES}`);
    await pageA.fill('#concurrency', '3');
    await pageA.click('#start');
    const cardA = pageA.locator('[data-task-id]').first();
    await cardA.waitFor({ timeout: 30_000 });
    const taskId = (await cardA.getAttribute('data-task-id'))!;

    const cardB = await taskCard(pageB, taskId);
    // Gateway B dies while page B follows the running task, and comes back on
    // the same address: the page's EventSource reconnects by itself with
    // Last-Event-ID and must neither lose nor repeat a step.
    await pageB.waitForFunction(
      (id) => {
        const card = document.querySelector(`[data-task-id="${id}"]`);
        return (
          Number(card?.getAttribute('data-last-seq')) >= 5 && card?.getAttribute('data-status') === 'running'
        );
      },
      taskId,
      { timeout: 60_000 },
    );
    const portB = String(gatewayB.ready.port);
    await gatewayB.kill();
    gatewayB = await spawnService('gateway', { ...env, PORT: portB });

    for (const [page, card] of [
      [pageA, cardA],
      [pageB, cardB],
    ] as const) {
      await page.waitForFunction(
        (id) => document.querySelector(`[data-task-id="${id}"]`)?.getAttribute('data-status') === 'completed',
        taskId,
        { timeout: 90_000 },
      );
      expect(await card.getAttribute('data-percent')).toBe('100');
      expect(await card.getAttribute('data-succeeded')).toBe(String(EXISTING_NODES));
      expect(await card.getAttribute('data-failed')).toBe(String(REQUESTED_NODES - EXISTING_NODES));
      expect(await card.locator('.fill').evaluate((el) => (el as HTMLElement).style.width)).toBe('100%');
      expect(await card.locator('tr.node-failed').count()).toBe(REQUESTED_NODES - EXISTING_NODES);
      expect(await card.locator('tr.node-failed').first().textContent()).toMatch(/sim-node-(28|29|30)/);
      const applied = Number(await card.getAttribute('data-applied'));
      const baseSeq = Number(await card.getAttribute('data-base-seq'));
      expect(await card.getAttribute('data-duplicates')).toBe('0');
      // The worker runs on the simulated cluster: the card says so.
      expect(await card.getAttribute('data-cluster-mode')).toBe('simulated');
      expect(await card.locator('.simulated').isVisible()).toBe(true);
      expect(baseSeq + applied).toBe(Number(await card.getAttribute('data-last-seq')));
    }

    // Every step folded once: the pages end on the log's last seq, as the API says.
    const state = (await (
      await fetch(`${gatewayB.ready.gatewayUrl as string}/api/v1/tasks/${taskId}`)
    ).json()) as {
      lastSeq: number;
      succeeded: number;
      failed: number;
    };
    expect(state).toMatchObject({ succeeded: EXISTING_NODES, failed: REQUESTED_NODES - EXISTING_NODES });
    expect(await cardA.getAttribute('data-last-seq')).toBe(String(state.lastSeq));
    expect(await cardB.getAttribute('data-last-seq')).toBe(String(state.lastSeq));
    await pageB.waitForFunction(
      () => document.querySelector('#notifier')?.getAttribute('data-active') === 'postgres',
      null,
      {
        timeout: 30_000,
      },
    );
    expect(pageErrors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await pageA.screenshot({ path: `${ARTIFACTS}gateway-page-a.png`, fullPage: true });
    await pageB.screenshot({ path: `${ARTIFACTS}gateway-page-b.png`, fullPage: true });
  }, 240_000);
});

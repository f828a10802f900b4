import {
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NodebatchClient,
  NotFoundError,
  UnauthenticatedError,
  WatchGaveUpError,
} from '@nodebatch/client';
import type { StoredEvent } from '@nodebatch/progress';
import { freePort } from '@nodebatch/testkit';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import {
  SERVICES_START_TIMEOUT_MS,
  SERVICES_STOP_TIMEOUT_MS,
  startReplicas,
  tokenFor,
} from '../gateway/services.js';
import type { ReplicaSetup, ServiceProcess } from '../gateway/services.js';

const NODES = Array.from({ length: 40 }, (_, i) => `sim-node-${i + 1}`);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

let setup: ReplicaSetup;
let gatewayA: ServiceProcess;
let gatewayB: ServiceProcess;
let token: string;

const urlOf = (gateway: ServiceProcess) => gateway.ready.gatewayUrl as string;

beforeAll(async () => {
  setup = await startReplicas('e2e_client');
  [gatewayA, gatewayB] = setup.gateways;
  token = await tokenFor('client-user');
}, SERVICES_START_TIMEOUT_MS);

afterAll(async () => {
  await setup?.close();
}, SERVICES_STOP_TIMEOUT_MS);

describe('@nodebatch/client against real gateways', () => {
  it('answers errors as named classes with the gateway code, field and message', async () => {
    const client = new NodebatchClient({ url: urlOf(gatewayA), token });
    const invalid = await client
      .submitBatch({ action: 'cordon', nodes: ['sim-node-1', 'sim-node-1'] })
      .catch((error: unknown) => error);
    expect(invalid).toBeInstanceOf(InvalidRequestError);
    expect(invalid).toMatchObject({ status: 400, code: 'INVALID_REQUEST', field: 'body.nodes[1]' });
    expect((invalid as Error).message).toContain('listed twice');

    const missing = await client.getTask('no-such-task').catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ status: 404, code: 'TASK_NOT_FOUND' });
    await expect(firstValueFrom(client.watchTask('no-such-task'))).rejects.toBeInstanceOf(NotFoundError);

    const anonymous = new NodebatchClient({ url: urlOf(gatewayA) });
    await expect(anonymous.listTasks()).rejects.toMatchObject({
      name: 'UnauthenticatedError',
      code: 'UNAUTHENTICATED',
    });
  });

  it('asks the token function again once after a 401, for requests and for the event stream', async () => {
    // Signed with another secret: what a gateway answers for an expired or rotated token.
    const stale = await new SignJWT({ role: 'user' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('client-user')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('a-secret-that-is-not-the-gateways-0123'));
    const fresh = await tokenFor('client-user');
    expect(stale).not.toBe(fresh);
    const issued: string[] = [];
    const client = new NodebatchClient({
      url: urlOf(gatewayA),
      token: () => {
        const next = issued.length === 0 ? stale : fresh;
        issued.push(next);
        return next;
      },
    });
    const { taskId } = await client.submitBatch({ action: 'cordon', nodes: ['sim-node-41'] });
    expect(issued).toEqual([stale, fresh]);
    expect((await client.listTasks()).map((task) => task.taskId)).toContain(taskId);
    expect(issued).toHaveLength(2);

    // The stream refuses the stale token too, then follows with a fresh one.
    let streamCalls = 0;
    const streamClient = new NodebatchClient({
      url: urlOf(gatewayB),
      token: () => (++streamCalls === 1 ? stale : fresh),
    });
    const events = await lastValueFrom(streamClient.watchTask(taskId).pipe(toArray()));
    expect(streamCalls).toBe(2);
    expect(events.map((event) => event.seq)).toEqual(oneTo(events.length));
    expect(events.at(-1)?.type).toBe('TaskCompleted');

    // A token function that only has bad tokens: called twice, then the 401 is reported.
    let badCalls = 0;
    const hopeless = new NodebatchClient({
      url: urlOf(gatewayA),
      token: () => {
        badCalls += 1;
        return stale;
      },
    });
    const refused = await hopeless.listTasks().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UnauthenticatedError);
    expect(badCalls).toBe(2);
  });

  it('completes the observable with TaskCancelled when the task is cancelled, and a second cancel is a ConflictError', async () => {
    const client = new NodebatchClient({ url: [urlOf(gatewayA), urlOf(gatewayB)], token });
    const { taskId } = await client.submitBatch({ action: 'cordon', nodes: NODES, concurrency: 1 });
    const events: StoredEvent[] = [];
    let cancelled: Promise<unknown> | undefined;
    await new Promise<void>((resolve, reject) => {
      client.watchTask(taskId).subscribe({
        next: (event) => {
          events.push(event);
          if (event.type === 'NodeSucceeded' && !cancelled)
            cancelled = client.cancelTask(taskId, { reason: 'maintenance window closed' });
        },
        error: reject,
        complete: resolve,
      });
    });
    expect(await cancelled).toEqual({ taskId, status: 'cancelling' });
    expect(events.map((event) => event.seq)).toEqual(oneTo(events.length));
    expect(events.at(-1)?.type).toBe('TaskCancelled');
    expect(events.filter((event) => event.type === 'CancelRequested')).toEqual([
      expect.objectContaining({ data: { by: 'client-user', reason: 'maintenance window closed' } }),
    ]);
    // The worker, another process, stopped: no more than the one node it may have been starting
    // as the cancel arrived (concurrency 1) began after it, and most nodes were never touched.
    const cancelledAt = events.findIndex((event) => event.type === 'CancelRequested');
    const startedAfter = events.slice(cancelledAt).filter((event) => event.type === 'NodeStarted');
    expect(startedAfter.length).toBeLessThanOrEqual(1);
    const outcome = events.at(-1)!;
    expect(outcome.type === 'TaskCancelled' && outcome.data.notStarted.length).toBeGreaterThan(
      NODES.length / 2,
    );
    const again = await client.cancelTask(taskId).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(ConflictError);
    expect(again).toMatchObject({ status: 409, code: 'TASK_ALREADY_ENDED' });
    expect((await client.getTask(taskId)).status).toBe('cancelled');
  });

  it('reads the audit trail as an admin; an operator gets a ForbiddenError with the rule', async () => {
    const operator = new NodebatchClient({ url: urlOf(gatewayA), token });
    const { taskId } = await operator.submitBatch({ action: 'cordon', nodes: ['sim-node-42'] });
    const admin = new NodebatchClient({
      url: urlOf(gatewayB),
      token: await tokenFor('client-admin', 'admin'),
    });
    const page = await admin.listAudit({ task: taskId, limit: 10 });
    expect(page.entries.length).toBeGreaterThan(0);
    expect(page.entries.every((entry) => entry.taskId === taskId)).toBe(true);
    expect(page.entries.some((entry) => entry.userId === 'client-user' && entry.decision === 'allowed')).toBe(
      true,
    );
    const refused = await operator.listAudit().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ForbiddenError);
    expect(refused).toMatchObject({ status: 403 });
  });

  it('lists every node of the cluster across the pages the gateway serves', async () => {
    const client = new NodebatchClient({ url: urlOf(gatewayA), token });
    // 60 simulated nodes, 25 per request: three pages.
    const nodes = await client.listNodes({ limit: 25 });
    expect(nodes.map((node) => node.name).sort()).toEqual(
      Array.from({ length: 60 }, (_, i) => `sim-node-${i + 1}`).sort(),
    );
  });

  it('gives up after giveUpAfterMs with an error saying how long it tried and what it saw last', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const client = new NodebatchClient({
      url: nowhere,
      token,
      watch: { giveUpAfterMs: 1500, initialDelayMs: 50, maxDelayMs: 200 },
    });
    const error = await lastValueFrom(client.watchTask('some-task', { after: 7 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WatchGaveUpError);
    const gaveUp = error as WatchGaveUpError;
    expect(gaveUp.lastSeq).toBe(7);
    expect(gaveUp.triedForMs).toBeGreaterThanOrEqual(1500);
    expect(gaveUp.attempts).toBeGreaterThan(1);
    expect(gaveUp.message).toMatch(
      /^gave up following task some-task after trying for \d+\.\d s \(\d+ attempts on /,
    );
    expect(gaveUp.message).toContain('resuming after seq 7');
    expect(gaveUp.message).toContain('ECONNREFUSED');
  });

  // Last: it kills gateway A.
  it('continues on the other gateway when the one it follows is killed mid-task, with every seq once', async () => {
    const client = new NodebatchClient({
      url: [urlOf(gatewayA), urlOf(gatewayB)],
      token,
      watch: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    const { taskId } = await client.submitBatch({ action: 'cordon', nodes: NODES, concurrency: 2 });
    const events: StoredEvent[] = [];
    let killed: Promise<void> | undefined;
    let seqAtKill = 0;
    await new Promise<void>((resolve, reject) => {
      client.watchTask(taskId).subscribe({
        next: (event) => {
          events.push(event);
          if (event.seq === 5) {
            seqAtKill = event.seq;
            killed = gatewayA.kill();
          }
        },
        error: reject,
        complete: resolve,
      });
    });
    await killed;
    expect(seqAtKill).toBe(5);
    expect(gatewayA.child.signalCode).toBe('SIGKILL');
    const seqs = events.map((event) => event.seq);
    expect(seqs).toEqual(oneTo(seqs.length));
    expect(seqs.length).toBeGreaterThan(seqAtKill + NODES.length);
    expect(events.at(-1)).toMatchObject({ type: 'TaskCompleted', data: { succeeded: NODES.length } });
    // Gateway A is gone: the client now talks to B.
    expect((await client.getTask(taskId)).status).toBe('completed');
  });
});

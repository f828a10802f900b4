import { recordEventStream } from '@nodebatch/client/testing';
import type { EventStreamRecording } from '@nodebatch/client/testing';
import type { StoredEvent } from '@nodebatch/progress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SERVICES_START_TIMEOUT_MS,
  SERVICES_STOP_TIMEOUT_MS,
  postJson,
  startReplicas,
  tokenFor,
  watchOverWebSocket,
} from './services.js';
import type { ReplicaSetup, ServiceProcess } from './services.js';

const TERMINAL = new Set(['TaskCompleted', 'TaskCancelled', 'TaskFailed']);
const NODES = Array.from({ length: 40 }, (_, i) => `sim-node-${i + 1}`);

let setup: ReplicaSetup;
let gatewayA: ServiceProcess;
let gatewayB: ServiceProcess;
let token: string;

const urlOf = (gateway: ServiceProcess) => gateway.ready.gatewayUrl as string;

beforeAll(async () => {
  setup = await startReplicas('e2e_gw');
  [gatewayA, gatewayB] = setup.gateways;
  token = await tokenFor('operator');
}, SERVICES_START_TIMEOUT_MS);

afterAll(async () => {
  await setup?.close();
}, SERVICES_STOP_TIMEOUT_MS);

async function submit(gateway: ServiceProcess): Promise<string> {
  const response = await postJson(`${urlOf(gateway)}/api/v1/batches`, token, {
    action: 'cordon',
    nodes: NODES,
    concurrency: 2,
  });
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return response.body.taskId as string;
}

function seqsOf(stream: EventStreamRecording): number[] {
  return stream.messages.map((message) => Number(message.id));
}

const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('two gateways and a worker as separate processes', () => {
  it('a batch submitted to A is seen over SSE on B and WebSocket on A: every seq once, up to the terminal event', async () => {
    const taskId = await submit(gatewayA);
    const [sse, wsEvents] = await Promise.all([
      recordEventStream(`${urlOf(gatewayB)}/api/v1/tasks/${taskId}/events`, {
        headers: { authorization: `Bearer ${token}` },
      }),
      watchOverWebSocket(urlOf(gatewayA), token, taskId),
    ]);
    expect(await sse.ended).toBe(true);

    const sseSeqs = seqsOf(sse);
    const last = sseSeqs.length;
    expect(last).toBeGreaterThanOrEqual(2 + 2 * NODES.length + 1);
    expect(sseSeqs).toEqual(oneTo(last));
    expect(TERMINAL.has(sse.messages.at(-1)!.event)).toBe(true);
    expect(wsEvents.map((event) => event.seq)).toEqual(oneTo(last));
    expect(wsEvents.at(-1)).toMatchObject({
      type: 'TaskCompleted',
      data: { succeeded: NODES.length, failed: 0 },
    });
    // Both replicas delivered the same log.
    expect(sse.messages.map((m) => JSON.parse(m.data) as StoredEvent)).toEqual(wsEvents);
  });

  it('when gateway B dies mid-task, the client resumes on A with Last-Event-ID and gets exactly the missing events', async () => {
    const taskId = await submit(gatewayA);
    const onB = await recordEventStream(`${urlOf(gatewayB)}/api/v1/tasks/${taskId}/events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await onB.waitFor((messages) => messages.length >= 5);
    await gatewayB.kill();
    expect(await onB.ended).toBe(false);
    const before = seqsOf(onB);
    expect(before).toEqual(oneTo(before.length));
    expect(TERMINAL.has(onB.messages.at(-1)!.event)).toBe(false);

    const onA = await recordEventStream(`${urlOf(gatewayA)}/api/v1/tasks/${taskId}/events`, {
      headers: { authorization: `Bearer ${token}`, 'last-event-id': onB.lastEventId! },
    });
    expect(await onA.ended).toBe(true);
    const after = seqsOf(onA);
    expect(after[0]).toBe(before.length + 1);
    expect([...before, ...after]).toEqual(oneTo(before.length + after.length));
    expect(onA.messages.at(-1)!.event).toBe('TaskCompleted');
  });
});

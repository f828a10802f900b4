import { InvalidArgumentError, Option, type Command } from 'commander';
import type { BatchRequest } from '@nodebatch/client';
import type { BatchAction } from '@nodebatch/progress';
import { clientFromEnv } from '../remote/client-from-env.js';
import { followTask } from '../remote/follow-task.js';
import {
  ArgumentSyntaxError,
  isLabelSpec,
  isTaintSpec,
  parseDurationSeconds,
  parseLabelSpecs,
  parseTaintSpecs,
} from '../remote/kubectl-syntax.js';
import { runRemote } from '../remote/run-remote.js';

/** Options every batch command has. */
interface BatchCommandOptions {
  selector?: string;
  reason?: string;
  concurrency?: number;
  cluster?: string;
  /** Undefined: follow when stdout is a terminal. */
  follow?: boolean;
  output: 'text' | 'json';
  cancelOnInterrupt: boolean;
}

/** kubectl drain's options, under kubectl's names. */
interface DrainCommandOptions extends BatchCommandOptions {
  force?: boolean;
  deleteEmptydirData?: boolean;
  gracePeriod?: number;
  timeout?: string;
  podSelector?: string;
  disableEviction?: boolean;
  skipWaitForDeleteTimeout?: number;
  dryRun?: string | boolean;
  ignoreDaemonsets?: boolean;
}

const DESCRIPTIONS: Record<BatchAction, string> = {
  cordon: 'mark nodes unschedulable',
  uncordon: 'mark nodes schedulable again',
  drain: 'cordon nodes and evict their pods as kubectl drain does',
  label: 'set (key=value) or remove (key-) node labels',
  taint: 'add (key=value:NoSchedule, key:NoSchedule) or remove (key:NoSchedule-, key-) node taints',
};

/** `nodebatch cordon|uncordon|drain|label|taint NODE... [-l SELECTOR]`: submit a batch to the gateway and follow it. */
export function registerBatchCommands(program: Command): void {
  for (const action of ['cordon', 'uncordon', 'drain', 'label', 'taint'] as const) {
    const specs =
      action === 'label'
        ? ' [key=value|key-]...'
        : action === 'taint'
          ? ' [key=value:Effect|key:Effect-|key-]...'
          : '';
    const command = program
      .command(action)
      .description(
        `${DESCRIPTIONS[action]} (gateway: NODEBATCH_URL, token: NODEBATCH_TOKEN or NODEBATCH_TOKEN_FILE)`,
      )
      .usage(`[NODE...]${specs} [-l SELECTOR] [options]`)
      .argument('[args...]', action === 'label' || action === 'taint' ? 'nodes, then the changes' : 'nodes');
    addBatchOptions(command);
    if (action === 'drain') addDrainOptions(command);
    command.action(async (args: string[], options: DrainCommandOptions) => {
      await runRemote(async () => submitAndFollow(batchRequest(action, args, options), options));
    });
  }
}

function addBatchOptions(command: Command): void {
  command
    .option(
      '-l, --selector <selector>',
      'the nodes matching a label selector instead of names (role=worker,zone!=a)',
    )
    .option('--reason <reason>', 'why: kept in the audit trail and, for cordon and drain, on the nodes')
    .option('--concurrency <n>', 'nodes worked on at once (default: the service’s)', (v) =>
      positiveInt(v, '--concurrency'),
    )
    .option('--cluster <name>', 'the named cluster (default: the service’s)')
    .option('--follow', 'show progress until the task ends (default on a terminal)')
    .option('--no-follow', 'print the task id and return')
    .addOption(
      new Option('-o, --output <format>', 'text, or json: the events as JSON lines')
        .choices(['text', 'json'])
        .default('text'),
    )
    .option('--cancel-on-interrupt', 'on Ctrl-C, cancel the task without asking', false);
}

function addDrainOptions(command: Command): void {
  command
    .option('--force', 'also evict pods that declare no controller (they are not recreated)')
    .option('--delete-emptydir-data', 'also evict pods with emptyDir volumes (their data is lost)')
    .option('--grace-period <seconds>', 'grace period of each pod, s (default: the pod’s own; -1 too)', (v) =>
      integer(v, '--grace-period'),
    )
    .option('--timeout <duration>', 'give up on a node after this long (90s, 5m, 1h; default: the service’s)')
    .option('--pod-selector <selector>', 'only evict pods matching this label selector')
    .option('--disable-eviction', 'delete pods instead of evicting them: bypasses disruption budgets')
    .option(
      '--skip-wait-for-delete-timeout <seconds>',
      'stop waiting for pods whose deletion started longer ago than this, s (NotReady nodes)',
      (v) => integer(v, '--skip-wait-for-delete-timeout'),
    )
    .option('--dry-run [strategy]', 'server: report what would be evicted and what blocks it, change nothing')
    .option('--ignore-daemonsets', 'accepted for kubectl habits: DaemonSet pods are always left alone');
}

/** The request a command line describes; an ArgumentSyntaxError names what cannot be read. */
function batchRequest(
  action: BatchAction,
  args: readonly string[],
  options: DrainCommandOptions,
): BatchRequest {
  const isSpec = action === 'label' ? isLabelSpec : action === 'taint' ? isTaintSpec : () => false;
  const nodes = args.filter((arg) => !isSpec(arg));
  const specs = args.filter((arg) => isSpec(arg));
  if (nodes.length > 0 && options.selector !== undefined) {
    throw new ArgumentSyntaxError(nodes.join(' '), 'give node names or -l SELECTOR, not both');
  }
  if (nodes.length === 0 && options.selector === undefined) {
    throw new ArgumentSyntaxError(
      args.join(' '),
      `name the nodes to ${action}, or select them with -l SELECTOR`,
    );
  }
  let params: Record<string, unknown> | undefined;
  if (action === 'label' || action === 'taint') {
    if (specs.length === 0) {
      throw new ArgumentSyntaxError(
        args.join(' '),
        action === 'label'
          ? 'give labels: key=value to set, key- to remove'
          : 'give taints: key=value:NoSchedule to add, key:NoSchedule- or key- to remove',
      );
    }
    params = { ...(action === 'label' ? parseLabelSpecs(specs) : parseTaintSpecs(specs)) };
  }
  if (action === 'drain') params = drainParams(options);
  return {
    action,
    ...(options.selector === undefined ? { nodes } : { selector: options.selector }),
    ...(params && Object.keys(params).length > 0 ? { params } : {}),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
    ...(options.reason === undefined ? {} : { reason: options.reason }),
  };
}

/** kubectl's flags as the batch params: only those given, so the service's defaults (the safe ones) apply otherwise. */
function drainParams(options: DrainCommandOptions): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  if (options.force) params.force = true;
  if (options.deleteEmptydirData) params.deleteEmptyDirData = true;
  // kubectl's -1 means the pod's own grace period: what leaving it out means here.
  if (options.gracePeriod !== undefined && options.gracePeriod >= 0)
    params.gracePeriodSeconds = options.gracePeriod;
  if (options.gracePeriod !== undefined && options.gracePeriod < -1) {
    throw new ArgumentSyntaxError(
      String(options.gracePeriod),
      '--grace-period is -1 (the pod’s own) or seconds ≥ 0',
    );
  }
  // kubectl's 0 means no limit; here it leaves the service's limit in place.
  if (options.timeout !== undefined) {
    const seconds = parseDurationSeconds(options.timeout, '--timeout');
    if (seconds > 0) params.timeoutSeconds = seconds;
  }
  if (options.podSelector !== undefined) params.podSelector = options.podSelector;
  if (options.disableEviction) params.disableEviction = true;
  if (options.skipWaitForDeleteTimeout !== undefined && options.skipWaitForDeleteTimeout > 0) {
    params.skipWaitForDeleteTimeoutSeconds = options.skipWaitForDeleteTimeout;
  }
  if (options.dryRun !== undefined && options.dryRun !== 'none') {
    if (options.dryRun !== 'server' && options.dryRun !== true) {
      throw new ArgumentSyntaxError(
        `--dry-run=${String(options.dryRun)}`,
        'only a server-side dry run is offered: --dry-run=server (or none)',
      );
    }
    params.dryRun = true;
  }
  return params;
}

async function submitAndFollow(request: BatchRequest, options: BatchCommandOptions): Promise<number> {
  const client = clientFromEnv();
  const { taskId } = await client.submitBatch(request);
  const follow = options.follow ?? process.stdout.isTTY === true;
  if (!follow) {
    process.stdout.write(
      options.output === 'json'
        ? `${JSON.stringify({ taskId })}\n`
        : `task ${taskId} accepted; follow it with: nodebatch task ${taskId} --follow\n`,
    );
    return 0;
  }
  return followTask({
    client,
    taskId,
    output: options.output,
    cancelOnInterrupt: options.cancelOnInterrupt,
  });
}

/** Option values commander reports as its own usage errors. */
function integer(value: string, flag: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`${flag} expects a whole number`);
  return Number(value);
}

function positiveInt(value: string, flag: string): number {
  const n = integer(value, flag);
  if (n < 1) throw new InvalidArgumentError(`${flag} expects a positive whole number`);
  return n;
}

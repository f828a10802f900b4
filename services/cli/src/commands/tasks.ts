import { InvalidArgumentError, Option, type Command } from 'commander';
import type { NodeInfo, TaskSummary } from '@nodebatch/client';
import { TERMINAL_TASK_STATUSES, type TaskState, type TaskStatus } from '@nodebatch/progress';
import { clientFromEnv } from '../remote/client-from-env.js';
import { followTask } from '../remote/follow-task.js';
import { runRemote } from '../remote/run-remote.js';
import { summaryOf } from '../remote/task-view.js';

const outputOption = () =>
  new Option('-o, --output <format>', 'text, or json').choices(['text', 'json']).default('text');

/** `nodebatch tasks`, `task ID [--follow]`, `nodes`, `cancel ID`: reading and steering through the gateway. */
export function registerTaskCommands(program: Command): void {
  program
    .command('tasks')
    .description('your tasks (every task for an admin), newest first')
    .addOption(
      new Option('--status <status>', 'only tasks in this status').choices([
        'pending',
        'running',
        'cancelling',
        ...TERMINAL_TASK_STATUSES,
      ]),
    )
    .option('--limit <n>', 'at most this many', (v) => positiveInt(v, '--limit'))
    .addOption(outputOption())
    .action(async (options: { status?: TaskStatus; limit?: number; output: 'text' | 'json' }) => {
      await runRemote(async () => {
        const tasks = await clientFromEnv().listTasks({
          ...(options.status ? { status: options.status } : {}),
          ...(options.limit ? { limit: options.limit } : {}),
        });
        if (options.output === 'json') process.stdout.write(`${JSON.stringify(tasks)}\n`);
        else process.stdout.write(taskTable(tasks));
        return 0;
      });
    });

  program
    .command('task')
    .description('one task: its state, or with --follow its progress until it ends')
    .argument('<id>', 'the task id')
    .option('--follow', 'follow it until it ends (exit 0: every node succeeded, 1: not, 130: Ctrl-C)')
    .option('--cancel-on-interrupt', 'on Ctrl-C, cancel the task without asking', false)
    .addOption(outputOption())
    .action(
      async (
        taskId: string,
        options: { follow?: boolean; cancelOnInterrupt: boolean; output: 'text' | 'json' },
      ) => {
        await runRemote(async () => {
          const client = clientFromEnv();
          if (options.follow) {
            return followTask({
              client,
              taskId,
              output: options.output,
              cancelOnInterrupt: options.cancelOnInterrupt,
            });
          }
          const state = await client.getTask(taskId);
          process.stdout.write(
            options.output === 'json' ? `${JSON.stringify(state)}\n` : describeTask(state),
          );
          return 0;
        });
      },
    );

  program
    .command('nodes')
    .description("the cluster's nodes")
    .option('-l, --selector <selector>', 'only nodes matching a label selector')
    .option('--cluster <name>', 'the named cluster (default: the service’s)')
    .addOption(outputOption())
    .action(async (options: { selector?: string; cluster?: string; output: 'text' | 'json' }) => {
      await runRemote(async () => {
        const nodes = await clientFromEnv().listNodes({
          ...(options.selector ? { selector: options.selector } : {}),
          ...(options.cluster ? { cluster: options.cluster } : {}),
        });
        if (options.output === 'json') process.stdout.write(`${JSON.stringify(nodes)}\n`);
        else process.stdout.write(nodeTable(nodes));
        return 0;
      });
    });

  program
    .command('cancel')
    .description('ask a task to stop (nodes in progress finish, the rest are not started)')
    .argument('<id>', 'the task id')
    .option('--reason <text>', 'why, recorded with the cancel and in the audit trail')
    .action(async (taskId: string, options: { reason?: string }) => {
      await runRemote(async () => {
        await clientFromEnv().cancelTask(taskId, options);
        process.stdout.write(`cancel of task ${taskId} requested\n`);
        return 0;
      });
    });
}

function describeTask(state: TaskState): string {
  const lines = [summaryOf(state)];
  for (const failed of state.failedNodes) lines.push(`  ${failed.node}: failed: ${failed.error}`);
  if (state.nodesInFlight.length > 0) lines.push(`  in progress: ${state.nodesInFlight.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function taskTable(tasks: readonly TaskSummary[]): string {
  return table(
    ['TASK', 'ACTION', 'STATUS', 'DONE', 'FAILED', 'USER', 'CREATED', 'CLUSTER'],
    tasks.map((task) => [
      task.taskId,
      task.action,
      task.status,
      `${task.done}/${task.total}`,
      String(task.failed),
      task.userId,
      task.createdAt,
      task.cluster ?? '-',
    ]),
  );
}

function nodeTable(nodes: readonly NodeInfo[]): string {
  return table(
    ['NAME', 'READY', 'SCHEDULABLE', 'TAINTS', 'CORDON REASON'],
    nodes.map((node) => [
      node.name,
      node.ready ?? '',
      node.schedulable === undefined ? '' : String(node.schedulable),
      (node.taints ?? []).map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`).join(','),
      node.cordonReason ? `${node.cordonReason.reason} (${node.cordonReason.by})` : '',
    ]),
  );
}

/** Columns padded to their widest cell, as kubectl prints. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 2)))
        .join('')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

function positiveInt(value: string, flag: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) {
    throw new InvalidArgumentError(`${flag} expects a positive whole number`);
  }
  return Number(value);
}

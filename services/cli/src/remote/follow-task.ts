import { createInterface } from 'node:readline';
import type { NodebatchClient } from '@nodebatch/client';
import { initialTaskState, reduceTask, type TaskState } from '@nodebatch/progress';
import { TaskView, exitCodeOf, summaryOf } from './task-view.js';

/** Exit code after Ctrl-C, as shells report a process ended by SIGINT. */
const INTERRUPTED_EXIT_CODE = 130;

interface FollowOptions {
  client: NodebatchClient;
  taskId: string;
  /** 'json': each event as one JSON line, nothing else on stdout. */
  output: 'text' | 'json';
  /** On Ctrl-C, cancel the task without asking. Default false: ask on a terminal, leave it running otherwise. */
  cancelOnInterrupt: boolean;
  /** The process's own streams unless given. */
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WritableStream;
  stdin?: NodeJS.ReadStream;
}

/**
 * Follows a task to its end and returns the exit code: 0 when every node
 * succeeded, 1 when any did not, 130 after Ctrl-C. The events come from
 * watchTask, which resumes across gateway restarts, so each line is printed once.
 */
export function followTask(given: FollowOptions): Promise<number> {
  const options: Required<FollowOptions> = {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    ...given,
  };
  const { client, taskId, stdout } = options;
  const view = new TaskView(stdout, options.output === 'text' && stdout.isTTY === true);
  let state: TaskState = initialTaskState(taskId);
  return new Promise<number>((resolve, reject) => {
    let interrupted = false;
    const subscription = client.watchTask(taskId).subscribe({
      next: (event) => {
        state = reduceTask(state, event);
        if (options.output === 'json') stdout.write(`${JSON.stringify(event)}\n`);
        else view.show(event, state);
      },
      error: (error: unknown) => {
        process.off('SIGINT', onInterrupt);
        if (options.output === 'text') view.finish(`following task ${taskId} stopped`);
        reject(error);
      },
      complete: () => {
        process.off('SIGINT', onInterrupt);
        if (options.output === 'text') view.finish(summaryOf(state));
        resolve(exitCodeOf(state));
      },
    });
    const onInterrupt = () => {
      if (interrupted) return;
      interrupted = true;
      subscription.unsubscribe();
      if (options.output === 'text') view.finish(`interrupted; task ${taskId} is ${state.status}`);
      decideCancel(options)
        .then(() => resolve(INTERRUPTED_EXIT_CODE))
        .catch(reject);
    };
    process.on('SIGINT', onInterrupt);
  });
}

async function decideCancel(options: Required<FollowOptions>): Promise<void> {
  const { client, taskId, stderr } = options;
  let cancel = options.cancelOnInterrupt;
  if (!cancel && options.stdin.isTTY) cancel = await askYesNo(options, `cancel task ${taskId}? [y/N] `);
  if (!cancel) {
    stderr.write(
      `task ${taskId} keeps running; follow it with: nodebatch task ${taskId} --follow, cancel it with: nodebatch cancel ${taskId}\n`,
    );
    return;
  }
  await client.cancelTask(taskId);
  stderr.write(`cancel of task ${taskId} requested; it stops once the nodes in progress are done\n`);
}

/** One line from the terminal; a second Ctrl-C or end of input is a no. */
function askYesNo(options: Required<FollowOptions>, question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: options.stdin, output: options.stderr, terminal: true });
    let answered = false;
    const done = (yes: boolean) => {
      if (answered) return;
      answered = true;
      rl.close();
      resolve(yes);
    };
    rl.on('SIGINT', () => {
      options.stderr.write('\n');
      done(false);
    });
    rl.on('close', () => done(false));
    rl.question(question, (answer) => done(/^y(es)?$/i.test(answer.trim())));
  });
}

import { GatewayUnreachableError, UnauthenticatedError, WatchGaveUpError } from '@nodebatch/client';
import { GatewayEnvironmentError } from './client-from-env.js';
import { ArgumentSyntaxError } from './kubectl-syntax.js';

/** Exit code of a command line or environment that could not be understood: not a task's outcome. */
const USAGE_EXIT_CODE = 2;

/**
 * Runs a gateway command and turns what it threw into one line on stderr
 * with a hint where one helps, and the exit code: 2 for a usage error, 1 otherwise.
 */
export async function runRemote(command: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await command();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message}\n`);
    const hint = hintFor(error);
    if (hint) process.stderr.write(`hint: ${hint}\n`);
    process.exitCode =
      error instanceof ArgumentSyntaxError || error instanceof GatewayEnvironmentError ? USAGE_EXIT_CODE : 1;
  }
}

function hintFor(error: unknown): string | undefined {
  if (error instanceof UnauthenticatedError)
    return 'set NODEBATCH_TOKEN, or NODEBATCH_TOKEN_FILE to a file holding the token';
  if (error instanceof GatewayUnreachableError)
    return `is NODEBATCH_URL (${process.env.NODEBATCH_URL ?? ''}) right, and is the gateway up?`;
  if (error instanceof WatchGaveUpError)
    return `the task may still be running: nodebatch task ${error.taskId} --follow`;
  return undefined;
}

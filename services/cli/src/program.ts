import { Command } from 'commander';
import { registerConfigCommand } from './commands/config.js';

/**
 * The `nodebatch` command line. Each command lives in its own module under
 * commands/ and registers itself here, so `nodebatch --help` lists them all.
 */
export function createProgram(): Command {
  const program = new Command('nodebatch')
    .description('Batch operations on Kubernetes nodes with live progress on every replica')
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  registerConfigCommand(program);
  return program;
}

import { Command } from 'commander';
import { registerAuditCommand } from './commands/audit.js';
import { registerBatchCommands } from './commands/batch.js';
import { registerConfigCommand } from './commands/config.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerGatewayCommand } from './commands/gateway.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerTaskCommands } from './commands/tasks.js';
import { registerWorkerCommand } from './commands/worker.js';

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
  registerWorkerCommand(program);
  registerGatewayCommand(program);
  registerMigrateCommand(program);
  registerDoctorCommand(program);
  registerDemoCommand(program);
  registerBatchCommands(program);
  registerTaskCommands(program);
  registerAuditCommand(program);
  return program;
}

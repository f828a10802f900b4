import type { Command } from 'commander';
import pg from 'pg';
import { createLogger, loadConfig, logConfigWarnings, pgPoolConfig } from '@nodebatch/config';
import { runMigrations } from '@nodebatch/event-store';

/**
 * `nodebatch migrate`: brings the event store's schema up to date. Workers and
 * gateways do the same at start-up (safely, under an advisory lock); this is
 * for deployments that run migrations as a separate step.
 */
export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply pending event store migrations and exit')
    .action(async () => {
      const { config, warnings } = loadConfig();
      const logger = createLogger({ level: config.log.level, name: 'migrate' });
      logConfigWarnings(logger, warnings);
      const pool = new pg.Pool({ ...pgPoolConfig(config.database), max: 1 });
      try {
        const { applied } = await runMigrations(pool, { logger });
        process.stdout.write(
          applied.length === 0 ? 'event store schema up to date\n' : `applied: ${applied.join(', ')}\n`,
        );
      } finally {
        await pool.end();
      }
    });
}

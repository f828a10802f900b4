import type { Command } from 'commander';
import { configEntries, createLogger } from '@nodebatch/config';
import { loadConfigOrReport } from '../load-config-or-report.js';
import { formatCheck } from '../doctor/doctor-check.js';
import { formatJson, formatTable } from './config.js';

/**
 * `nodebatch doctor`: the effective configuration with its sources, then one
 * line per check with its timing. Read-only: what is pending is a failed
 * check naming `--fix`, which applies it. Exit code 0 only when every check passes
 * (a warning, such as a notifier running on its fallback, is not a pass).
 */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('print the configuration with sources and check every connection')
    .option('--json', 'print { config, checks, ok } as JSON', false)
    .option('--timeout <ms>', 'time limit per check', (v) => Number(v), 5000)
    .option(
      '--fix',
      'apply pending migrations (event store, BullMQ schema); without it doctor changes nothing',
      false,
    )
    .action(async (options: { json: boolean; timeout: number; fix: boolean }) => {
      const loaded = loadConfigOrReport();
      if (!loaded) return;
      // Logs of the parts under test go to stderr at warn, so stdout stays the report.
      const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'silent', name: 'doctor' });
      const entries = configEntries(loaded);
      if (!options.json) {
        process.stdout.write(formatTable(entries));
        for (const warning of loaded.warnings) process.stdout.write(`⚠️  ${warning.message}\n`);
        process.stdout.write('\n');
      }
      // Loaded here: the checks pull in every driver, which other commands do not need.
      const { runDoctor } = await import('../doctor/run-doctor.js');
      const checks = await runDoctor({
        config: loaded.config,
        logger,
        timeoutMs: options.timeout,
        fix: options.fix,
      });
      const ok = checks.every((check) => check.status === 'ok' || check.status === 'skipped');
      if (options.json) {
        process.stdout.write(
          `${JSON.stringify({ config: JSON.parse(formatJson(entries)), warnings: loaded.warnings.map((w) => w.message), checks, ok }, null, 2)}\n`,
        );
      } else {
        for (const check of checks) process.stdout.write(`${formatCheck(check)}\n`);
        process.stdout.write(ok ? '\nall checks passed\n' : '\nsome checks did not pass\n');
      }
      process.exitCode = ok ? 0 : 1;
    });
}

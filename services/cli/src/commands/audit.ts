import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import pg from 'pg';
import { pgPoolConfig } from '@nodebatch/config';
import { createAuditLog, type AuditQuery, type AuditRecord } from '@nodebatch/event-store';
import { loadConfigOrReport } from '../load-config-or-report.js';

interface AuditOptions {
  user?: string;
  action?: string;
  node?: string;
  task?: string;
  since?: string;
  until?: string;
  before?: string;
  limit: number;
  json: boolean;
}

/**
 * `nodebatch audit`: the audit trail, newest first, read from the database
 * (the same rows GET /api/v1/audit serves to admins). Filters combine with
 * AND; `--before` takes the cursor printed after a full page.
 */
export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('print the audit trail (who asked for what, the policy decision and the outcome per node)')
    .option('--user <user>', 'only this user')
    .option('--action <action>', 'only this action (cordon, drain, …, cancel)')
    .option('--node <node>', 'only rows naming this node')
    .option('--task <id>', 'only this task')
    .option('--since <time>', 'rows at or after this ISO-8601 time', isoTime)
    .option('--until <time>', 'rows before this ISO-8601 time', isoTime)
    .option('--before <cursor>', 'the next page: the cursor printed after the previous one', cursor)
    .option('--limit <n>', 'rows per page (1-1000)', pageSize, 50)
    .option('--json', 'print { entries, nextCursor } as JSON', false)
    .action(async (options: AuditOptions) => {
      const loaded = loadConfigOrReport();
      if (!loaded) return;
      const pool = new pg.Pool({ ...pgPoolConfig(loaded.config.database), max: 1 });
      try {
        const page = await createAuditLog({ pool }).list(queryOf(options));
        if (options.json) {
          process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
          return;
        }
        process.stdout.write(formatAuditTable(page.entries));
        if (page.nextCursor) process.stdout.write(`more: nodebatch audit --before ${page.nextCursor}\n`);
      } finally {
        await pool.end();
      }
    });
}

function queryOf(options: AuditOptions): AuditQuery {
  const query: AuditQuery = { limit: options.limit };
  if (options.user) query.userId = options.user;
  if (options.action) query.action = options.action;
  if (options.node) query.node = options.node;
  if (options.task) query.taskId = options.task;
  if (options.since) query.since = options.since;
  if (options.until) query.until = options.until;
  if (options.before) query.before = options.before;
  return query;
}

/** One line per row: time, user (role), action, decision or outcome, nodes, task. */
function formatAuditTable(entries: readonly AuditRecord[]): string {
  const rows = [
    ['TIME', 'USER', 'ACTION', 'RESULT', 'NODES', 'TASK', 'DETAIL'],
    ...entries.map((entry) => [
      entry.time,
      entry.role ? `${entry.userId} (${entry.role})` : entry.userId,
      entry.action,
      entry.kind === 'outcome' ? `ended ${entry.status ?? '?'}` : (entry.decision ?? '-'),
      nodesOf(entry),
      entry.taskId ?? '-',
      detailOf(entry),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

function nodesOf(entry: AuditRecord): string {
  if (entry.nodeCount === 0) return entry.selector ?? '-';
  const shown = entry.nodes.slice(0, 3).join(',');
  return entry.nodeCount > 3 ? `${shown},… (${entry.nodeCount})` : shown;
}

function detailOf(entry: AuditRecord): string {
  if (entry.kind === 'outcome') {
    const counts = new Map<string, number>();
    for (const result of Object.values(entry.outcome ?? {})) {
      counts.set(result.status, (counts.get(result.status) ?? 0) + 1);
    }
    return [...counts].map(([status, count]) => `${count} ${status}`).join(', ');
  }
  const parts = [
    entry.decision === 'denied' ? `${entry.rule ?? ''}: ${entry.message ?? ''}` : '',
    entry.reason ? `reason: ${entry.reason}` : '',
    entry.clientAddress ? `from ${entry.clientAddress}` : '',
  ];
  return parts.filter(Boolean).join('; ');
}

function isoTime(value: string): string {
  if (Number.isNaN(Date.parse(value)) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new InvalidArgumentError('expected an ISO-8601 time such as 2026-11-29T12:00:00Z');
  }
  return value;
}

function cursor(value: string): string {
  if (!/^\d{1,18}$/.test(value))
    throw new InvalidArgumentError('expected the cursor a previous page printed');
  return value;
}

function pageSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('expected an integer 1-1000');
  return n;
}

import type { Command } from 'commander';
import { configEntries, type ConfigEntry } from '@nodebatch/config';
import { loadConfigOrReport } from '../load-config-or-report.js';

/**
 * `nodebatch config`: the effective configuration, one row per dotted key
 * with its value and where it came from. Secrets print as `set` / `not set`.
 * Warnings go to stderr so that `--json` output stays machine-readable.
 */
export function registerConfigCommand(program: Command): void {
  program
    .command('config')
    .description(
      'print the effective configuration with the source of every value (env, file, url or default)',
    )
    .option('--json', 'print { "<dotted key>": { "value": ..., "source": "..." } }', false)
    .action((options: { json: boolean }) => {
      const loaded = loadConfigOrReport();
      if (!loaded) return;
      for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning.message}\n`);
      const entries = configEntries(loaded);
      process.stdout.write(options.json ? `${formatJson(entries)}\n` : formatTable(entries));
    });
}

export function formatJson(entries: ConfigEntry[]): string {
  const result: Record<string, { value: unknown; source: string }> = {};
  for (const entry of entries) result[entry.key] = { value: entry.value, source: entry.source };
  return JSON.stringify(result, null, 2);
}

function display(entry: ConfigEntry): string {
  if (entry.value === null) return entry.key === 'redis' ? 'not configured' : '-';
  if (Array.isArray(entry.value)) {
    return entry.value.length === 0 ? '-' : entry.value.map((item: unknown) => listItem(item)).join(', ');
  }
  if (typeof entry.value === 'object') {
    // A mapping such as auth.groupRoles, in the form its variable takes (group=role, …).
    const pairs = Object.entries(entry.value as Record<string, unknown>);
    return pairs.length === 0 ? '-' : pairs.map(([key, value]) => `${key}=${String(value)}`).join(', ');
  }
  return String(entry.value);
}

/**
 * A list item: text as it is; a node of redis.clusterNodes as host:port; an
 * entry of cluster.clusters as `name (key=value, …, default)`.
 */
function listItem(item: unknown): string {
  if (item === null || typeof item !== 'object') return String(item);
  if ('host' in item && 'port' in item) {
    const { host, port } = item as { host: string; port: number };
    return `${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  const { name, ...rest } = item as Record<string, unknown>;
  const attributes = Object.entries(rest)
    .filter(([, value]) => value !== false && value !== undefined)
    .map(([key, value]) => (value === true ? key : `${key}=${String(value)}`));
  return `${String(name)}${attributes.length > 0 ? ` (${attributes.join(', ')})` : ''}`;
}

export function formatTable(entries: ConfigEntry[]): string {
  const rows = [
    ['KEY', 'VALUE', 'SOURCE'],
    ...entries.map((entry) => [entry.key, display(entry), entry.source]),
  ];
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  return rows
    .map(
      ([key = '', value = '', source = '']) =>
        `${key.padEnd(widths[0] ?? 0)}  ${value.padEnd(widths[1] ?? 0)}  ${source}`,
    )
    .join('\n')
    .concat('\n');
}

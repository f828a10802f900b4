import { CONFIG_FIELDS } from './config-fields.js';
import type { LoadedConfig } from './load-config.js';

/** One line of `nodebatch config`: a dotted key, a printable value and its source. */
export interface ConfigEntry {
  key: string;
  /** The value, or `set` / `not set` for secrets. null for an unconfigured section (Redis). */
  value: unknown;
  source: string;
}

/**
 * The effective configuration as key / value / source rows, safe to print:
 * secrets are reduced to `set` or `not set`.
 */
export function configEntries(loaded: LoadedConfig): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  const config = loaded.config as unknown as Record<string, Record<string, unknown> | null>;
  let redisListed = false;
  for (const field of CONFIG_FIELDS) {
    const [section = '', key = ''] = field.key.split('.');
    const group = config[section];
    if (group === null) {
      if (section === 'redis' && !redisListed) {
        entries.push({ key: 'redis', value: null, source: loaded.sources.redis ?? 'default' });
        redisListed = true;
      }
      continue;
    }
    const value = group?.[key];
    entries.push({
      key: field.key,
      value: field.secret ? (value === undefined ? 'not set' : 'set') : (value ?? null),
      source: loaded.sources[field.key] ?? 'default',
    });
  }
  return entries;
}

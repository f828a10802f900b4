import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Node } from 'yaml';
import { CONFIG_FIELDS } from './config-fields.js';
import { ConfigError, type ConfigIssue } from './config-error.js';
import { closestName } from './lookalike.js';

/** A value found in the YAML file, with the line it is on for error messages. */
export interface FileValue {
  value: unknown;
  line: number;
}

export interface ConfigFile {
  /** The path as the user gave it (CONFIG_FILE) or `config.yaml`; used in sources. */
  label: string;
  /** Values by dotted key; only keys present in the file. */
  values: Map<string, FileValue>;
  /** Top-level sections present with a mapping (e.g. `redis:` configures Redis). */
  sections: Set<string>;
}

const KNOWN_KEYS = new Set(CONFIG_FIELDS.map((field) => field.key));
const KNOWN_SECTIONS = new Set(CONFIG_FIELDS.map((field) => field.key.split('.')[0] ?? ''));

/**
 * Reads the YAML configuration file. CONFIG_FILE must exist when set;
 * `./config.yaml` is read only when present. Unknown keys are errors with
 * their line, because a misspelt key in our own file is a setting silently
 * not applied.
 */
export function readConfigFile(options: { configFile?: string; cwd: string }): ConfigFile | undefined {
  const explicit = options.configFile !== undefined && options.configFile.trim() !== '';
  const label = explicit ? options.configFile!.trim() : 'config.yaml';
  const path = isAbsolute(label) ? label : resolve(options.cwd, label);
  const origin = explicit ? `CONFIG_FILE=${JSON.stringify(label)}` : label;

  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') return undefined;
    throw fileError(
      origin,
      'config file',
      `${origin}: cannot read ${path} (${code ?? String(error)})`,
      error,
    );
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const [parseError] = doc.errors;
  if (parseError) {
    const line = parseError.linePos?.[0]?.line ?? 1;
    const reason = parseError.message.split('\n')[0];
    throw fileError(origin, 'config file', `${path} line ${line}: malformed YAML: ${reason}`, parseError);
  }

  const lineOf = (node: Node | null | undefined): number =>
    node?.range ? lineCounter.linePos(node.range[0]).line : 1;
  const file: ConfigFile = { label, values: new Map(), sections: new Set() };
  const issues: ConfigIssue[] = [];
  const unknown = (key: string, line: number, known: Iterable<string>) => {
    const suggestion = closestName(key, [...known]);
    issues.push({
      key,
      source: `file ${label}#${key} line ${line}`,
      message: `${path} line ${line}: unknown key ${key}${suggestion ? ` (did you mean ${suggestion}?)` : ''}`,
    });
  };

  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return file;
  if (!isMap(root)) {
    throw fileError(origin, 'config file', `${path} line ${lineOf(root)}: expected a mapping of sections`);
  }
  for (const sectionPair of root.items) {
    const section = String(isScalar(sectionPair.key) ? sectionPair.key.value : sectionPair.key);
    const sectionLine = lineOf(sectionPair.key as Node);
    if (!KNOWN_SECTIONS.has(section)) {
      unknown(section, sectionLine, KNOWN_SECTIONS);
      continue;
    }
    const body = sectionPair.value as Node | null;
    if (body === null || (isScalar(body) && body.value === null)) continue;
    if (!isMap(body)) {
      issues.push({
        key: section,
        source: `file ${label}#${section} line ${lineOf(body)}`,
        message: `${section} (from file ${label}#${section} line ${lineOf(body)}): expected a mapping of keys`,
      });
      continue;
    }
    file.sections.add(section);
    for (const pair of body.items) {
      const name = String(isScalar(pair.key) ? pair.key.value : pair.key);
      const key = `${section}.${name}`;
      const node = pair.value as Node | null;
      const line = lineOf((node ?? pair.key) as Node);
      if (!KNOWN_KEYS.has(key)) {
        unknown(key, lineOf(pair.key as Node), KNOWN_KEYS);
        continue;
      }
      const value = node === null ? null : node.toJSON();
      // `key:` with nothing after it means "not set here", as in most YAML configs.
      if (value !== null && value !== undefined) file.values.set(key, { value, line });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return file;
}

function fileError(source: string, key: string, message: string, cause?: unknown): ConfigError {
  return new ConfigError([{ key, source, message }], { cause });
}

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Node } from 'yaml';
import { CONFIG_FIELDS } from './config-fields.js';
import { ConfigError, type ConfigIssue } from './config-error.js';
import { closestName } from './lookalike.js';
import { ENABLE_DATABASE_KEY, IGNORED_FILE_KEYS, IGNORED_FILE_SECTIONS } from './replaced-system-keys.js';
import { boolean } from './value-schemas.js';

/** A value found in the YAML file, with the line it is on for error messages. */
export interface FileValue {
  value: unknown;
  line: number;
  /** The key as written: `progress.notify_type` or `progress.notifyType`. */
  spelling: string;
}

/** A key of the replaced system's file that nodebatch does not use: reported once, not an error. */
export interface IgnoredFileKey {
  key: string;
  line: number;
  /** Why, or what to use instead; may be empty. */
  note: string;
}

export interface ConfigFile {
  /** The path as the user gave it (CONFIG_FILE) or `config.yaml`; used in sources. */
  label: string;
  /** Values by dotted key; only keys present in the file. */
  values: Map<string, FileValue>;
  /** Top-level sections present with a mapping (e.g. `redis:` configures Redis). */
  sections: Set<string>;
  /** Keys of the replaced system's file that were skipped, in file order. */
  ignored: IgnoredFileKey[];
  /** `progress.enable_database: false`, which nodebatch cannot honour, with its line. */
  databaseDisabledLine?: number;
}

/** Every spelling the file may use, mapped to the key it sets. */
const SPELLINGS = new Map<string, string>(
  CONFIG_FIELDS.flatMap((field) => [field.key, ...(field.fileAliases ?? [])].map((s) => [s, field.key])),
);
SPELLINGS.set(ENABLE_DATABASE_KEY, ENABLE_DATABASE_KEY);
const KNOWN_SECTIONS = new Set([...SPELLINGS.keys()].map((key) => key.split('.')[0] ?? ''));
const ENABLE_DATABASE_VALUE = boolean();
/** What a misspelling is compared with: the keys nodebatch reads, in either spelling. */
const KNOWN_SPELLINGS = [...SPELLINGS.keys()];

/**
 * Reads the YAML configuration file. CONFIG_FILE must exist when set;
 * `./config.yaml` is read only when present. Unknown keys are errors with
 * their line, because a misspelt key in our own file is a setting silently
 * not applied. Keys of the replaced system's file are read under their own
 * spelling (fileAliases) or listed in `ignored`.
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
  const file: ConfigFile = { label, values: new Map(), sections: new Set(), ignored: [] };
  /** Where each key was first set, to reject a second spelling of it. */
  const seen = new Map<string, { spelling: string; line: number }>();
  const issues: ConfigIssue[] = [];
  const unknown = (key: string, line: number, known: Iterable<string>) => {
    // Of two equally close spellings, suggest the one in the writer's own style.
    const snake = key.includes('_');
    const ordered = [...known].sort(
      (a, b) => Number(a.includes('_') !== snake) - Number(b.includes('_') !== snake),
    );
    const suggestion = closestName(key, ordered);
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
    if (IGNORED_FILE_SECTIONS.has(section)) {
      file.ignored.push({ key: section, line: sectionLine, note: '' });
      continue;
    }
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
      const spelling = `${section}.${name}`;
      const node = pair.value as Node | null;
      const keyLine = lineOf(pair.key as Node);
      const line = lineOf((node ?? pair.key) as Node);
      const ignoredNote = IGNORED_FILE_KEYS.get(spelling);
      if (ignoredNote !== undefined) {
        file.ignored.push({ key: spelling, line: keyLine, note: ignoredNote });
        continue;
      }
      const key = SPELLINGS.get(spelling);
      if (key === undefined) {
        unknown(spelling, keyLine, KNOWN_SPELLINGS);
        continue;
      }
      const earlier = seen.get(key);
      if (earlier) {
        issues.push({
          key,
          source: `file ${label}#${spelling} line ${keyLine}`,
          message: `${path} lines ${earlier.line} and ${keyLine}: ${earlier.spelling} and ${spelling} are two spellings of one setting; keep one`,
        });
        continue;
      }
      seen.set(key, { spelling, line: keyLine });
      const value = node === null ? null : node.toJSON();
      // `key:` with nothing after it means "not set here", as in most YAML configs.
      if (value === null || value === undefined) continue;
      if (key === ENABLE_DATABASE_KEY) {
        const parsed = ENABLE_DATABASE_VALUE.schema.safeParse(value);
        if (!parsed.success) {
          issues.push({
            key,
            source: `file ${label}#${spelling} line ${line}`,
            message: `${spelling}=${JSON.stringify(value)} (from file ${label}#${spelling} line ${line}): expected ${ENABLE_DATABASE_VALUE.expected}`,
          });
        } else if (!parsed.data) file.databaseDisabledLine = line;
        continue;
      }
      file.values.set(key, { value, line, spelling });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return file;
}

function fileError(source: string, key: string, message: string, cause?: unknown): ConfigError {
  return new ConfigError([{ key, source, message }], { cause });
}

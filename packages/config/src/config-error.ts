/** One invalid value: where it came from and what would have been accepted. */
export interface ConfigIssue {
  /** Dotted configuration key, e.g. `database.port` (or `config file` for file-level problems). */
  key: string;
  /** Where the value came from, e.g. `env DB_PORT`, `file config.yaml#database.port line 3`, `url DATABASE_URL`. */
  source: string;
  /** The whole line shown to the user; never contains a secret value. */
  message: string;
}

/**
 * The configuration could not be loaded. The message lists every problem at
 * once (one per line), each naming the variable or file key it came from and
 * the accepted form, so a deployment is fixed in one round rather than one
 * error per restart.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    const lines = issues.map((issue) => issue.message);
    super(
      lines.length === 1
        ? `invalid configuration: ${lines[0]}`
        : `invalid configuration:\n  ${lines.join('\n  ')}`,
      options,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

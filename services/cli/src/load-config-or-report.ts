import { ConfigError, loadConfig, type LoadedConfig } from '@nodebatch/config';

/**
 * The configuration, or undefined after writing the ConfigError's message
 * (which names each variable or file key that was wrong) to stderr and
 * setting exit code 1: a bad value is the user's to fix, not a stack trace.
 */
export function loadConfigOrReport(): LoadedConfig | undefined {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 1;
    return undefined;
  }
}

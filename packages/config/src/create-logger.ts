import { pino, type DestinationStream, type Logger } from 'pino';

export interface CreateLoggerOptions {
  /** pino level. Default: `info`. */
  level?: string;
  /** Added as `name` to every line, e.g. `worker` or `gateway`. */
  name?: string;
  /** Where lines go. Default: standard output. */
  destination?: DestinationStream;
}

/**
 * Field names whose values are secrets wherever they appear (up to three
 * levels deep, which covers `config.database.password` and
 * `req.headers.authorization`). Configured here once so that no service
 * has to remember it.
 */
export const REDACTED_PATHS: readonly string[] = [
  'password',
  'jwtSecret',
  'hintKey',
  'token',
  'authorization',
  'cookie',
  'connectionString',
].flatMap((name) => [name, `*.${name}`, `*.*.${name}`, `*.*.*.${name}`]);

/** A pino logger: one JSON object per line, errors under `err`, secrets redacted. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const settings = {
    level: options.level ?? 'info',
    ...(options.name !== undefined ? { name: options.name } : {}),
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

import type { Logger } from 'pino';

/**
 * Logs connection errors of a queue without flooding: a client that cannot
 * reach its server reports the same error on every reconnect attempt, so the
 * same message is logged again only after `quietMs` (default 60 s).
 */
export function connectionErrorLogger(logger: Logger, quietMs = 60_000): (err: Error) => void {
  let lastMessage: string | undefined;
  let lastAt = 0;
  return (err) => {
    const now = Date.now();
    if (err.message === lastMessage && now - lastAt < quietMs) return;
    lastMessage = err.message;
    lastAt = now;
    logger.warn({ err }, 'batch queue connection error; retrying');
  };
}

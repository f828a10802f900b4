import type { Logger } from 'pino';

/**
 * Counts payloads on the channel that are not ours or not valid. Another
 * program NOTIFYing on the same channel must not crash a replica nor flood
 * its log: the first one is logged with a snippet, later ones only as a
 * periodic summary.
 */
export class MalformedPayloadLog {
  #total = 0;
  #unreported = 0;
  #summaryTimer: NodeJS.Timeout | null = null;

  readonly #logger: Logger;
  readonly #channel: string;
  readonly #summaryIntervalMs: number;

  constructor(
    logger: Logger,
    channel: string,
    /** Minimum time between two summaries, in ms. */
    summaryIntervalMs: number,
  ) {
    this.#logger = logger;
    this.#channel = channel;
    this.#summaryIntervalMs = summaryIntervalMs;
  }

  get count(): number {
    return this.#total;
  }

  record(payload: string, error: string): void {
    this.#total += 1;
    if (this.#total === 1) {
      this.#logger.warn(
        { channel: this.#channel, error, payload: snippet(payload) },
        `ignoring a malformed payload on channel ${this.#channel}; later ones are counted and summarised`,
      );
      return;
    }
    this.#unreported += 1;
    if (!this.#summaryTimer) {
      this.#summaryTimer = setTimeout(() => this.#summarise(), this.#summaryIntervalMs);
      this.#summaryTimer.unref();
    }
  }

  stop(): void {
    if (this.#summaryTimer) clearTimeout(this.#summaryTimer);
    this.#summaryTimer = null;
  }

  #summarise(): void {
    this.#summaryTimer = null;
    this.#logger.warn(
      { channel: this.#channel, malformedPayloads: this.#total, sinceLastReport: this.#unreported },
      `ignored ${this.#unreported} more malformed payloads on channel ${this.#channel}`,
    );
    this.#unreported = 0;
  }
}

/** Enough of a payload to recognise its sender, not so much that a log line explodes. */
function snippet(payload: string): string {
  return payload.length > 120 ? `${payload.slice(0, 120)}… (${payload.length} chars)` : payload;
}

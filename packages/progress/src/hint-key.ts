import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { NodebatchError } from './errors.js';
import type { StoredEvent } from './events.js';
import { canonicalJson } from './hint-check.js';

/**
 * The first half of invariant 8: an inline event is delivered without a log
 * read when it is authenticated. Every process that sends hints (workers) and
 * every process that delivers them (gateways) shares one secret,
 * PROGRESS_HINT_KEY; a sender puts an HMAC-SHA256 of exactly what it
 * announces in the notification, and a receiver that computes the same MAC
 * over what it parsed knows those events come from a process that holds the
 * key, that is, one that appended them to the log. Anything else is checked
 * against the log as before, so a missing or wrong key costs reads, never
 * correctness.
 */

/** Shortest key accepted, in bytes: the size of the HMAC-SHA256 output, as for AUTH_JWT_SECRET. */
export const MIN_HINT_KEY_BYTES = 32;

/**
 * Heads the signed text: a later change of what a MAC covers gets a new tag,
 * so a MAC of one version never verifies as the other.
 */
const SIGNED_TEXT_VERSION = 'nodebatch-hint-v1';

/** Length of a MAC as it travels: 32 bytes in base64url, without padding. */
export const HINT_MAC_LENGTH = 43;

/** What a receiver found of the MAC of a hint's inline events. */
export type HintAuthentication =
  /** Made with this process's key over exactly these events: they are delivered without a log read. */
  | 'verified'
  /** Present but not made with this key over these events (a forgery, altered data, another key). */
  | 'invalid'
  /** Absent although this process has a key (a sender without one). */
  | 'missing';

/** What a MAC covers: the hint's task and seq and each inline event, every field of it. */
export interface SignedHint {
  taskId: string;
  seq: number;
  events: readonly StoredEvent[];
}

/** A hint key shorter than {@link MIN_HINT_KEY_BYTES}. */
export class HintKeyTooShortError extends NodebatchError {
  constructor(variable: string, bytes: number) {
    super(
      'HINT_KEY_TOO_SHORT',
      `${variable} is ${bytes} bytes; it must be at least ${MIN_HINT_KEY_BYTES} bytes (for example: openssl rand -base64 48)`,
    );
  }
}

/**
 * The shared secret of hint senders and receivers (PROGRESS_HINT_KEY). Holds
 * the key as a KeyObject: printing or serializing a HintKey shows no secret.
 */
export class HintKey {
  readonly #key: KeyObject;

  /** `variable` names where the secret came from, for the error when it is too short. */
  constructor(secret: string | Uint8Array, variable = 'PROGRESS_HINT_KEY') {
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
    if (bytes.length < MIN_HINT_KEY_BYTES) throw new HintKeyTooShortError(variable, bytes.length);
    this.#key = createSecretKey(bytes);
  }

  /** The MAC of a hint's inline events, base64url ({@link HINT_MAC_LENGTH} characters). */
  sign(hint: SignedHint): string {
    return this.#mac(hint).toString('base64url');
  }

  /** Whether `mac` is the MAC of exactly this hint; compared in constant time. */
  verify(hint: SignedHint, mac: string): boolean {
    if (mac.length !== HINT_MAC_LENGTH) return false;
    const given = Buffer.from(mac, 'base64url');
    const expected = this.#mac(hint);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** What a receiver makes of the MAC that came with a hint, or of its absence. */
  authenticate(hint: SignedHint, mac: string | undefined): HintAuthentication {
    if (mac === undefined) return 'missing';
    return this.verify(hint, mac) ? 'verified' : 'invalid';
  }

  /**
   * One HMAC over one text per hint. The text is JSON of arrays in a fixed
   * field order with the keys of `data` sorted (canonicalJson), so it is the
   * same for the sender's stored events and the receiver's parsed copy, and
   * two different hints never give the same text.
   */
  #mac(hint: SignedHint): Buffer {
    const text = canonicalJson([
      SIGNED_TEXT_VERSION,
      hint.taskId,
      hint.seq,
      hint.events.map((event) => [
        event.taskId,
        event.seq,
        event.position,
        event.type,
        event.time,
        event.data,
      ]),
    ]);
    return createHmac('sha256', this.#key).update(text, 'utf8').digest();
  }
}

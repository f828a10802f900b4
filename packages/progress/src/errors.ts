/** Base class of every error nodebatch throws on purpose; `code` is stable for callers and logs. */
export class NodebatchError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An event (or a batch of them) failed its schema; nothing of the batch was written. */
export class InvalidEventError extends NodebatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_EVENT', message, options);
  }
}

/** A transport could not connect, or lost its connection; the notifier falls back to polling. */
export class TransportUnavailableError extends NodebatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRANSPORT_UNAVAILABLE', message, options);
  }
}

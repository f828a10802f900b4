/**
 * A bearer token: a fixed string, or a function that returns a current one
 * (short-lived OIDC tokens). The function is called for the first request and
 * again after a 401, once per request, before the 401 is reported.
 */
export type TokenProvider = string | (() => string | Promise<string>);

/** Caches the provider's token until a 401 says it is stale. */
export class TokenSource {
  #current: Promise<string | undefined> | undefined;

  readonly #provider: TokenProvider | undefined;

  constructor(provider: TokenProvider | undefined) {
    this.#provider = provider;
  }

  /** Whether a 401 is worth one more try with a new token. */
  get refreshable(): boolean {
    return typeof this.#provider === 'function';
  }

  /** The token to send; undefined when none is configured. */
  token(): Promise<string | undefined> {
    this.#current ??= this.#fetch();
    return this.#current;
  }

  /**
   * Called after a 401 that used `rejected`: asks the provider again, unless
   * a concurrent request already did (its token is then the new one).
   */
  async refresh(rejected: string | undefined): Promise<string | undefined> {
    const current = await this.#current;
    if (current === rejected) this.#current = this.#fetch();
    return this.#current;
  }

  #fetch(): Promise<string | undefined> {
    const provider = this.#provider;
    if (provider === undefined || typeof provider === 'string') return Promise.resolve(provider);
    const pending = Promise.resolve().then(provider);
    // A provider that failed is asked again next time rather than failing every later request.
    pending.catch(() => {
      if (this.#current === pending) this.#current = undefined;
    });
    return pending;
  }
}

/** The Authorization header for a token, or none. */
export function authorizationHeader(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

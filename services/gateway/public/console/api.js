// The gateway's HTTP API as the console uses it: the session's token, and errors that keep the
// field the server named so a form can show the message next to that field.

const TOKEN_KEY = 'nodebatch_token';
/** The cookie the gateway reads on GET streams: EventSource cannot send an Authorization header. */
const TOKEN_COOKIE = 'nodebatch_token';

/** The token pasted for this browser tab's session ('' when none: auth off or supplied by a proxy). */
export function sessionToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function keepToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  setTokenCookie(token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  document.cookie = `${TOKEN_COOKIE}=; path=/; max-age=0; SameSite=Strict`;
}

/** A session cookie (no expiry): it ends with the browser session, as the stored token does. */
export function setTokenCookie(token) {
  if (token) document.cookie = `${TOKEN_COOKIE}=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
}

/** A refusal or failure from the gateway: its HTTP status, code, message and the field at fault. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = body?.code ?? null;
    /** e.g. `body.params.gracePeriodSeconds`, `selector`; null when no one field is at fault. */
    this.field = body?.field ?? null;
  }
}

/** One JSON request; resolves with the body, rejects with ApiError (or the network's TypeError). */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const token = sessionToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** `?a=1&b=2` from the defined values of `query`. */
export function queryString(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

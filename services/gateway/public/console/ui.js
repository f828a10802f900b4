// Shared bits of the console's views: the template tag and small presentational components.
import { h, htm, useEffect } from './console-lib.js';

export const html = htm.bind(h);

/**
 * The message of `error` when it names `field` or a field under it (`body.params.set` claims
 * `body.params.set["a b"]`); null otherwise.
 */
export function errorFor(error, ...fields) {
  if (!error?.field) return null;
  return fields.some(
    (field) =>
      error.field === field || error.field.startsWith(`${field}.`) || error.field.startsWith(`${field}[`),
  )
    ? error.message
    : null;
}

/**
 * Runs `load` now, then again `everyMs` after each run ended, until the view goes or `deps`
 * change. `load(live)` applies what it read only while `live()` holds: an answer that arrives
 * after the view went or its deps changed is dropped.
 */
export function useRefresh(load, everyMs, deps) {
  useEffect(() => {
    let stopped = false;
    let timer;
    const run = async () => {
      await load(() => !stopped);
      if (!stopped) timer = setTimeout(run, everyMs);
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
}

/** The error under a field, announced to screen readers. */
export function FieldError({ message, id }) {
  if (!message) return null;
  return html`<div class="field-error" role="alert" id=${id}>${message}</div>`;
}

/** A progress bar with its text. */
export function Bar({ percent, done, total, failed }) {
  return html`<div
    class="bar"
    role="progressbar"
    aria-valuemin="0"
    aria-valuemax="100"
    aria-valuenow=${percent}
    aria-label="progress"
  >
    <div class=${`fill${failed ? ' has-failed' : ''}`} style=${{ width: `${percent}%` }}></div>
    <div class="bar-text">${percent}% (${done}/${total})</div>
  </div>`;
}

/** Previous and next buttons over `pages` pages (none when there is one); `page` counts from 0. */
export function Pager({ page, pages, onPage }) {
  if (pages <= 1) return null;
  return html`<div class="pager">
    <button type="button" disabled=${page === 0} onClick=${() => onPage(page - 1)}>Previous</button>
    <span>page ${page + 1} of ${pages}</span>
    <button type="button" disabled=${page + 1 >= pages} onClick=${() => onPage(page + 1)}>Next</button>
  </div>`;
}

export function SimulatedBadge() {
  return html`<span class="badge simulated" title="ran against the simulated cluster, not Kubernetes"
    >simulated</span
  >`;
}

/** `1 m 05 s`, `850 ms`. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  return `${Math.floor(seconds / 60)} m ${String(seconds % 60).padStart(2, '0')} s`;
}

export function formatTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

// Recent tasks, newest first, with filters; opening one replays it from the log.
import { api, queryString } from './api.js';
import { useState } from './console-lib.js';
import { Bar, formatTime, html, useRefresh } from './ui.js';

const STATUSES = ['pending', 'running', 'cancelling', 'completed', 'cancelled', 'failed'];
const ACTIONS = ['cordon', 'uncordon', 'drain', 'label', 'taint'];
const REFRESH_MS = 3000;
const LIMIT = 100;

/** A select with `any` first. */
function Choice({ id, label, value, options, onChange }) {
  return html`<label
    >${label}
    <select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      <option value="">any</option>
      ${options.map((option) => html`<option value=${option}>${option}</option>`)}
    </select></label
  >`;
}

/** `who.seesAllTasks`: the list holds every user's tasks, so it can be filtered by user. */
export function History({ who, openTaskId, onOpen, refreshKey }) {
  const [status, setStatus] = useState('');
  const [action, setAction] = useState('');
  const [user, setUser] = useState('');
  const [tasks, setTasks] = useState([]);
  const [error, setError] = useState(null);

  useRefresh(
    async (live) => {
      try {
        const { tasks: list } = await api('GET', `/api/v1/tasks${queryString({ status, limit: LIMIT })}`);
        if (!live()) return;
        setTasks(list);
        setError(null);
      } catch (err) {
        if (live()) setError(err.message);
      }
    },
    REFRESH_MS,
    [status, refreshKey],
  );

  const shown = tasks.filter(
    (task) => (!action || task.action === action) && (!user || task.userId.includes(user.trim())),
  );
  return html`<section class="panel history" aria-labelledby="history-title">
    <h2 id="history-title">Tasks</h2>
    <div class="filters">
      <${Choice}
        id="history-status"
        label="Status"
        value=${status}
        options=${STATUSES}
        onChange=${setStatus}
      />
      <${Choice}
        id="history-action"
        label="Action"
        value=${action}
        options=${ACTIONS}
        onChange=${setAction}
      />
      ${
        who.seesAllTasks
          ? html`<label
              >User
              <input
                id="history-user"
                type="search"
                value=${user}
                placeholder="any"
                onInput=${(e) => setUser(e.currentTarget.value)}
            /></label>`
          : null
      }
    </div>
    ${error ? html`<p class="field-error" role="alert">${error}</p>` : null}
    <ul class="task-list">
      ${shown.map(
        (task) =>
          html`<li key=${task.taskId}>
            <button
              type="button"
              class=${`task-item${task.taskId === openTaskId ? ' open' : ''}`}
              data-history-task=${task.taskId}
              data-status=${task.status}
              aria-current=${task.taskId === openTaskId ? 'true' : undefined}
              onClick=${() => onOpen(task.taskId)}
            >
              <span class="task-item-head">
                <strong>${task.action}</strong>
                <span class=${`status-pill ${task.status}`}>${task.status}</span>
                <span class="muted">${task.total} node${task.total === 1 ? '' : 's'}</span>
              </span>
              <${Bar}
                percent=${task.total ? Math.floor((task.done * 10000) / task.total) / 100 : 0}
                done=${task.done}
                total=${task.total}
                failed=${task.failed > 0}
              />
              <span class="muted">${task.userId} · ${formatTime(task.createdAt)}</span>
            </button>
          </li>`,
      )}
      ${shown.length === 0 ? html`<li class="muted">No task${status || action || user ? ' matches' : ' yet'}.</li>` : null}
    </ul>
  </section>`;
}

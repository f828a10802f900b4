// A task: the overall bar, one row per node with its live status, and the final summary.
import { useState } from './console-lib.js';
import { Bar, Pager, SimulatedBadge, formatDuration, html } from './ui.js';

const PAGE_SIZE = 100;
const BUDGET_WAIT = /disruption budget/i;

/** The final summary: what the terminal event says. */
function Outcome({ state }) {
  const outcome = state.outcome;
  if (!outcome) return null;
  const d = outcome.data;
  if (outcome.type === 'TaskFailed') {
    return html`<p class="outcome failed" data-outcome="failed">
      Failed: ${d.error}${d.code ? ` (${d.code})` : ''}
    </p>`;
  }
  const counts = `${d.succeeded} succeeded, ${d.failed} failed, ${d.skipped} skipped`;
  if (outcome.type === 'TaskCancelled') {
    return html`<p class="outcome cancelled" data-outcome="cancelled">
      Cancelled${state.cancelRequest ? ` by ${state.cancelRequest.by}` : ''}: ${counts},
      ${d.notStarted.length} not started
    </p>`;
  }
  return html`<p class="outcome completed" data-outcome="completed">
    Completed in ${formatDuration(Date.parse(state.finishedAt) - Date.parse(state.createdAt))}: ${counts}
  </p>`;
}

/** A drain dry run's finding on one node: what would be evicted, what it leaves, what blocks it. */
function DrainPlan({ plan }) {
  const line = (kind, label, entries) =>
    entries.length > 0
      ? html`<li class=${`plan-${kind}`}>
          <span class="plan-label">${label}</span>
          <ul class="plan-pods">
            ${entries.map(
              (entry) =>
                html`<li data-pod=${entry.pod} data-plan=${kind}>
                  <code>${entry.pod}</code
                  >${entry.reason ? html` <span class="muted">— ${entry.reason}</span>` : null}
                </li>`,
            )}
          </ul>
        </li>`
      : null;
  return html`<ul class="drain-plan">
    ${line('blocked', 'blocks the drain', plan.blocked)}
    ${plan.blocked.length === 0 ? html`<li class="plan-clear">nothing blocks the drain</li>` : null}
    ${line(
      'evict',
      'would be evicted',
      plan.evict.map((pod) => ({ pod })),
    )}
    ${plan.evict.length === 0 ? html`<li class="plan-none">no pod to evict</li>` : null}
    ${line('left', 'left in place', plan.left)}
  </ul>`;
}

function NodeRow({ node, now }) {
  // The end's message (NodeSucceeded, NodeSkipped) once there is one, else the latest progress.
  const message = node.message ?? node.progress?.message ?? '';
  const waitingForBudget = node.status !== 'succeeded' && BUDGET_WAIT.test(message);
  const end = node.finishedAt ? Date.parse(node.finishedAt) : now;
  const duration = node.startedAt ? formatDuration(end - Date.parse(node.startedAt)) : '';
  const progress = node.progress ? ` ${node.progress.done}/${node.progress.total}` : '';
  return html`<tr
    class=${`node-row node-${node.status}`}
    data-node=${node.node}
    data-node-status=${node.status}
  >
    <td class="name">${node.node}</td>
    <td class="status"><span class=${`status-pill ${node.status}`}>${node.status}</span>${progress}</td>
    <td class="num attempt" title="attempt">${node.attempts || ''}</td>
    <td class="message" title=${node.drainPlan ? message : undefined}>
      ${waitingForBudget ? html`<span class="badge budget">waiting for disruption budget</span> ` : null}${
        node.drainPlan ? html`<${DrainPlan} plan=${node.drainPlan} />` : message
      }
    </td>
    <td class="error">${node.error ?? ''}</td>
    <td class="num duration">${duration}</td>
  </tr>`;
}

/** The task a TaskWatch follows. `mayCancel` comes from the policy's answer (owner or admin). */
export function TaskView({ watch, mayCancel, onCancel, cancelError, onClose }) {
  const [page, setPage] = useState(0);
  const s = watch.state;
  const names = s.nodes;
  const pages = Math.max(1, Math.ceil(names.length / PAGE_SIZE));
  const shown = names.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  const now = Date.now();
  const ended = watch.ended;
  const dryRun = s.action === 'drain' && s.params?.dryRun === true;
  return html`<section
    class="task"
    aria-label="task"
    data-task-id=${s.taskId}
    data-status=${s.status}
    data-percent=${String(s.percent)}
    data-succeeded=${String(s.succeeded)}
    data-failed=${String(s.failed)}
    data-last-seq=${String(s.lastSeq)}
    data-applied=${String(watch.applied)}
    data-duplicates=${String(watch.duplicates)}
  >
    <header class="task-head">
      <h2>
        ${s.action ?? 'task'}${dryRun ? ' (dry run)' : ''}
        <span class=${`status-pill ${s.status}`}>${s.status}</span>
        ${s.clusterMode === 'simulated' ? html`<${SimulatedBadge} />` : null}
      </h2>
      <div class="task-meta">
        <code>${s.taskId}</code>${s.userId ? html` · by ${s.userId}` : null}${
          s.cluster ? html` · cluster ${s.cluster}` : null
        }${s.reason ? html` · “${s.reason}”` : null}
        ${watch.note ? html` · <span class="muted stream-note">${watch.note}</span>` : null}
      </div>
      <div class="task-actions">
        ${
          mayCancel && !ended
            ? html`<button
                type="button"
                class="danger cancel"
                disabled=${s.status === 'cancelling'}
                onClick=${() => onCancel(s.taskId)}
              >
                ${s.status === 'cancelling' ? 'Cancelling…' : 'Cancel task'}
              </button>`
            : null
        }
        <button type="button" class="secondary" onClick=${onClose}>Close</button>
      </div>
    </header>
    ${cancelError ? html`<p class="field-error" role="alert">${cancelError}</p>` : null}
    <${Bar} percent=${s.percent} done=${s.done} total=${s.total} failed=${s.failed > 0} />
    <p class="counts">
      ${s.succeeded} succeeded · ${s.failed} failed · ${s.skipped} skipped · ${s.nodesInFlight.length} running
    </p>
    <${Outcome} state=${s} />
    <div class="table-wrap">
      <table class="task-nodes">
        <thead>
          <tr>
            <th scope="col">node</th>
            <th scope="col">status</th>
            <th scope="col">attempt</th>
            <th scope="col">latest message</th>
            <th scope="col">error</th>
            <th scope="col">duration</th>
          </tr>
        </thead>
        <tbody>
          ${shown.map((name) => html`<${NodeRow} key=${name} node=${s.nodeStates[name]} now=${now} />`)}
        </tbody>
      </table>
    </div>
    <${Pager} page=${page} pages=${pages} onPage=${setPage} />
  </section>`;
}

// The cluster's nodes: filter by text, label selector and status, sort, page, select.
import { api, queryString } from './api.js';
import { useEffect, useMemo, useState } from './console-lib.js';
import { FieldError, Pager, SimulatedBadge, errorFor, html } from './ui.js';

/** The API's largest page: 2,000 nodes are four requests. */
const FETCH_LIMIT = 500;
/** Rows drawn at once: the table stays quick with thousands of nodes. */
const PAGE_SIZE = 25;
const STATUS_FILTERS = ['ready', 'notready', 'cordoned', 'schedulable'];

const SORTS = {
  name: (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }),
  ready: (a, b) => a.ready.localeCompare(b.ready),
  schedulable: (a, b) => Number(a.schedulable) - Number(b.schedulable),
  pods: (a, b) => a.podCount - b.podCount,
};

/** Every node the selector and status match, reading the API's pages one after another. */
export async function loadNodes({ selector, status, cluster }) {
  const items = [];
  let cont;
  let page;
  do {
    page = await api(
      'GET',
      `/api/v1/nodes${queryString({ selector, status, cluster, limit: FETCH_LIMIT, continue: cont })}`,
    );
    items.push(...page.items);
    cont = page.continue;
  } while (cont);
  return { cluster: page.cluster, simulated: page.simulated, items };
}

function matchesText(node, text) {
  if (!text) return true;
  if (node.name.includes(text)) return true;
  return Object.entries(node.labels).some(([key, value]) => `${key}=${value}`.includes(text));
}

/** Key=value chips, the first few shown and the rest behind a toggle. */
function Chips({ items, label }) {
  const [open, setOpen] = useState(false);
  if (items.length === 0) return html`<span class="muted">—</span>`;
  const shown = open ? items : items.slice(0, 2);
  return html`<span class="chips">
    ${shown.map((text) => html`<span class="chip" title=${text}>${text}</span>`)}
    ${
      items.length > 2
        ? html`<button
            type="button"
            class="link"
            aria-expanded=${open}
            aria-label=${`${open ? 'fewer' : 'all'} ${label}`}
            onClick=${() => setOpen(!open)}
          >
            ${open ? 'less' : `+${items.length - 2}`}
          </button>`
        : null
    }
  </span>`;
}

function Schedulable({ node }) {
  if (node.schedulable) return html`<span class="status-pill ok">schedulable</span>`;
  const reason = node.cordonReason;
  return html`<span class="status-pill warn">cordoned</span> ${
      reason
        ? html`<div class="cordon-reason">
            ${reason.reason}${reason.by ? html` <span class="muted">— ${reason.by}</span>` : null}
          </div>`
        : null
    }`;
}

function SortHeader({ column, label, sort, setSort }) {
  const active = sort.column === column;
  return html`<th scope="col" aria-sort=${active ? (sort.ascending ? 'ascending' : 'descending') : 'none'}>
    <button
      type="button"
      class="sort"
      onClick=${() => setSort({ column, ascending: active ? !sort.ascending : true })}
    >
      ${label}${active ? (sort.ascending ? ' ▲' : ' ▼') : ''}
    </button>
  </th>`;
}

/** The cluster picker: shown only when the gateway knows more than one cluster. */
function ClusterPicker({ clusters, cluster, onCluster }) {
  if (clusters.length < 2) return null;
  return html`<label
    >Cluster
    <select id="cluster" value=${cluster ?? ''} onChange=${(e) => onCluster(e.currentTarget.value)}>
      ${clusters.map(
        (c) =>
          html`<option value=${c.name}>
            ${c.name}${c.mode === 'simulated' ? ' (simulated)' : ''}${c.default ? ' — default' : ''}
          </option>`,
      )}
    </select></label
  >`;
}

/**
 * `selected` is a Set of node names owned by the console; `onSelect(names, on)` adds or removes
 * names. `onLoaded(inventory)` hands the loaded nodes up (the copy-taints source picker uses them).
 * `cluster` is the cluster shown (undefined: the gateway's default), one of `clusters`;
 * `onCluster(name)` picks another.
 */
export function NodeTable({ selected, onSelect, onLoaded, refreshKey, cluster, clusters, onCluster }) {
  const [text, setText] = useState('');
  const [selectorInput, setSelectorInput] = useState('');
  const [selector, setSelector] = useState('');
  const [status, setStatus] = useState('');
  const [sort, setSort] = useState({ column: 'name', ascending: true });
  const [page, setPage] = useState(0);
  const [inventory, setInventory] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);

  useEffect(() => {
    let stopped = false;
    setLoading(true);
    loadNodes({ selector, status, cluster })
      .then((loaded) => {
        if (stopped) return;
        setInventory(loaded);
        setError(null);
        onLoaded(loaded);
      })
      .catch((err) => {
        if (!stopped) setError(err);
      })
      .finally(() => {
        if (!stopped) setLoading(false);
      });
    return () => {
      stopped = true;
    };
  }, [selector, status, cluster, refreshKey]);

  const filtered = useMemo(() => {
    const items = (inventory?.items ?? []).filter((node) => matchesText(node, text.trim()));
    const compare = SORTS[sort.column];
    items.sort((a, b) => (sort.ascending ? compare(a, b) : compare(b, a)) || SORTS.name(a, b));
    return items;
  }, [inventory, text, sort]);

  const pages = Math.max(1, Math.ceil(filtered.length / PAGE_SIZE));
  const currentPage = Math.min(page, pages - 1);
  const rows = filtered.slice(currentPage * PAGE_SIZE, (currentPage + 1) * PAGE_SIZE);
  const allFilteredSelected = filtered.length > 0 && filtered.every((node) => selected.has(node.name));
  const selectorError = errorFor(error, 'selector');

  return html`<section class="panel nodes" aria-labelledby="nodes-title">
    <div class="panel-head">
      <h2 id="nodes-title">Nodes</h2>
      ${
        inventory
          ? html`<span class="muted" id="node-count"
                >${filtered.length} of ${inventory.items.length} shown · cluster ${inventory.cluster}</span
              >${inventory.simulated ? html`<${SimulatedBadge} />` : null}`
          : null
      }
      ${loading ? html`<span class="muted">loading…</span>` : null}
    </div>
    <form
      class="filters"
      onSubmit=${(e) => {
        e.preventDefault();
        setPage(0);
        setSelector(selectorInput.trim());
      }}
    >
      <${ClusterPicker} clusters=${clusters} cluster=${cluster} onCluster=${onCluster} />
      <label
        >Search
        <input
          id="node-text"
          type="search"
          placeholder="name or label"
          value=${text}
          onInput=${(e) => {
            setText(e.currentTarget.value);
            setPage(0);
          }}
      /></label>
      <label
        >Label selector
        <input
          id="node-selector"
          placeholder="e.g. pool=blue,zone!=a"
          value=${selectorInput}
          aria-invalid=${Boolean(selectorError)}
          aria-describedby="node-selector-error"
          onInput=${(e) => setSelectorInput(e.currentTarget.value)}
        />
        <${FieldError} id="node-selector-error" message=${selectorError} />
      </label>
      <label
        >Status
        <select
          id="node-status"
          value=${status}
          onChange=${(e) => {
            setStatus(e.currentTarget.value);
            setPage(0);
          }}
        >
          <option value="">any</option>
          ${STATUS_FILTERS.map((s) => html`<option value=${s}>${s}</option>`)}
        </select></label
      >
      <button type="submit" id="node-apply">Apply</button>
    </form>
    ${error && !selectorError ? html`<p class="field-error" role="alert">${error.message}</p>` : null}
    <div class="selection-bar">
      <label class="inline"
        ><input
          type="checkbox"
          id="select-filtered"
          checked=${allFilteredSelected}
          disabled=${filtered.length === 0}
          onChange=${(e) =>
            onSelect(
              filtered.map((node) => node.name),
              e.currentTarget.checked,
            )}
        />
        Select all ${filtered.length} shown by the filter</label
      >
      <span id="selected-count">${selected.size} selected</span>
      ${
        selected.size > 0
          ? html`<button type="button" class="link" onClick=${() => onSelect([...selected], false)}>
              clear
            </button>`
          : null
      }
    </div>
    <div class="table-wrap">
      <table class="node-table">
        <thead>
          <tr>
            <th scope="col"><span class="visually-hidden">selected</span></th>
            <${SortHeader} column="name" label="Name" sort=${sort} setSort=${setSort} />
            <${SortHeader} column="ready" label="Status" sort=${sort} setSort=${setSort} />
            <${SortHeader} column="schedulable" label="Scheduling" sort=${sort} setSort=${setSort} />
            <th scope="col">Roles</th>
            <th scope="col">Labels</th>
            <th scope="col">Taints</th>
            <${SortHeader} column="pods" label="Pods" sort=${sort} setSort=${setSort} />
            <th scope="col">Cluster</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (node) =>
              html`<tr
                key=${node.name}
                data-node-row=${node.name}
                class=${selected.has(node.name) ? 'selected' : ''}
              >
                <td>
                  <input
                    type="checkbox"
                    aria-label=${`select ${node.name}`}
                    checked=${selected.has(node.name)}
                    onChange=${(e) => onSelect([node.name], e.currentTarget.checked)}
                  />
                </td>
                <td class="name">${node.name}</td>
                <td>
                  <span class=${`status-pill ${node.ready === 'True' ? 'ok' : 'bad'}`}
                    >${node.ready === 'True' ? 'Ready' : 'NotReady'}</span
                  >
                </td>
                <td><${Schedulable} node=${node} /></td>
                <td>${node.roles.join(', ') || html`<span class="muted">—</span>`}</td>
                <td>
                  <${Chips}
                    label="labels"
                    items=${Object.entries(node.labels).map(([k, v]) => `${k}=${v}`)}
                  />
                </td>
                <td>
                  <${Chips}
                    label="taints"
                    items=${node.taints.map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`)}
                  />
                </td>
                <td class="num">${node.podCount}</td>
                <td class="cluster">${inventory.cluster}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <${Pager} page=${currentPage} pages=${pages} onPage=${setPage} />
  </section>`;
}

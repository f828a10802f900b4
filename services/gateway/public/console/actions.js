// Forms that start a batch on the selected nodes. Only the actions the user's role may run are
// offered; the server still decides, and its refusal or validation error is shown where it belongs.
import { api } from './api.js';
import { useState } from './console-lib.js';
import { FieldError, errorFor, html } from './ui.js';

const EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

/** The drain's text and number options: the form field, the param it sets, how it is shown. */
const DRAIN_FIELDS = [
  {
    id: 'drain-grace',
    param: 'gracePeriodSeconds',
    type: 'number',
    min: '0',
    label: 'Grace period (s)',
    placeholder: "pod's own",
  },
  {
    id: 'drain-timeout',
    param: 'timeoutSeconds',
    type: 'number',
    min: '1',
    label: 'Timeout per node (s)',
    placeholder: '300',
  },
  {
    id: 'drain-pod-selector',
    param: 'podSelector',
    type: 'text',
    label: 'Pod selector',
    placeholder: 'all pods',
  },
  {
    id: 'drain-skip-wait',
    param: 'skipWaitForDeleteTimeoutSeconds',
    type: 'number',
    min: '0',
    label: 'Skip wait for deleted pods after (s)',
    placeholder: '0 = always wait',
  },
];

/** The forms, each with the batch action it runs. */
const FORMS = [
  { id: 'cordon', action: 'cordon', label: 'Cordon' },
  { id: 'uncordon', action: 'uncordon', label: 'Uncordon' },
  { id: 'drain', action: 'drain', label: 'Drain' },
  { id: 'label', action: 'label', label: 'Labels' },
  { id: 'taint', action: 'taint', label: 'Taints' },
  { id: 'copy-taints', action: 'taint', label: 'Copy taints' },
];

/** A whole number from a number input, undefined when empty (the server's default applies). */
function optionalInt(text) {
  const trimmed = String(text ?? '').trim();
  return trimmed === '' ? undefined : Number(trimmed);
}

function withoutUndefined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

/** The params of each form from its fields. */
const PARAMS = {
  cordon: () => ({}),
  uncordon: () => ({}),
  drain: (f) =>
    withoutUndefined({
      force: f.force || undefined,
      deleteEmptyDirData: f.deleteEmptyDirData || undefined,
      gracePeriodSeconds: optionalInt(f.gracePeriodSeconds),
      timeoutSeconds: optionalInt(f.timeoutSeconds),
      podSelector: f.podSelector?.trim() || undefined,
      skipWaitForDeleteTimeoutSeconds: optionalInt(f.skipWaitForDeleteTimeoutSeconds),
    }),
  label: (f) => {
    const set = {};
    for (const row of f.labelRows ?? []) if (row.key.trim()) set[row.key.trim()] = row.value;
    const remove = (f.labelRemove ?? '')
      .split(/[\s,]+/)
      .map((key) => key.trim())
      .filter(Boolean);
    return withoutUndefined({
      set: Object.keys(set).length ? set : undefined,
      remove: remove.length ? remove : undefined,
    });
  },
  taint: (f) => {
    const add = (f.taintAdd ?? [])
      .filter((row) => row.key.trim())
      .map((row) =>
        withoutUndefined({ key: row.key.trim(), value: row.value || undefined, effect: row.effect }),
      );
    const remove = (f.taintRemove ?? [])
      .filter((row) => row.key.trim())
      .map((row) => withoutUndefined({ key: row.key.trim(), effect: row.effect || undefined }));
    return withoutUndefined({
      add: add.length ? add : undefined,
      remove: remove.length ? remove : undefined,
    });
  },
  'copy-taints': (f) => ({ copyFrom: (f.copyFrom ?? '').trim(), mode: f.copyMode ?? 'merge' }),
};

/** The field paths each form shows errors at; anything else shows under the form. */
const FIELDS = {
  cordon: [],
  uncordon: [],
  drain: DRAIN_FIELDS.map((field) => `body.params.${field.param}`),
  label: ['body.params.set', 'body.params.remove'],
  taint: ['body.params.add', 'body.params.remove'],
  'copy-taints': ['body.params.copyFrom', 'body.params.mode'],
};
const COMMON_FIELDS = ['body.reason', 'body.concurrency'];

function TextField({ id, label, value, onInput, error, type = 'text', placeholder, min }) {
  return html`<label
    >${label}
    <input
      id=${id}
      type=${type}
      min=${min}
      placeholder=${placeholder}
      value=${value ?? ''}
      aria-invalid=${Boolean(error)}
      aria-describedby=${`${id}-error`}
      onInput=${(e) => onInput(e.currentTarget.value)}
    />
    <${FieldError} id=${`${id}-error`} message=${error} />
  </label>`;
}

function Check({ id, label, checked, onChange, hint }) {
  return html`<label class="inline" title=${hint}
    ><input
      id=${id}
      type="checkbox"
      checked=${Boolean(checked)}
      onChange=${(e) => onChange(e.currentTarget.checked)}
    />
    ${label}</label
  >`;
}

function DrainFields({ f, set, err }) {
  return html`<fieldset>
    <legend>Drain options</legend>
    <p class="hint">Off by default: each of these can lose data or bypass a safeguard.</p>
    <${Check}
      id="drain-force"
      label="force (pods no controller recreates)"
      checked=${f.force}
      onChange=${(v) => set('force', v)}
    />
    <${Check}
      id="drain-delete-emptydir"
      label="delete emptyDir data"
      checked=${f.deleteEmptyDirData}
      onChange=${(v) => set('deleteEmptyDirData', v)}
    />
    <div class="grid">
      ${DRAIN_FIELDS.map(
        (field) =>
          html`<${TextField}
            key=${field.param}
            id=${field.id}
            type=${field.type}
            min=${field.min}
            label=${field.label}
            placeholder=${field.placeholder}
            value=${f[field.param]}
            onInput=${(v) => set(field.param, v)}
            error=${err(`body.params.${field.param}`)}
          />`,
      )}
    </div>
  </fieldset>`;
}

/** One input of a row of `Rows`, bound to the row's `name`. */
function RowInput({ row, name, change, label, id, placeholder }) {
  return html`<input
    aria-label=${label}
    id=${id}
    placeholder=${placeholder}
    value=${row[name]}
    onInput=${(e) => change({ [name]: e.currentTarget.value })}
  />`;
}

/** The key and value inputs of a label or taint row (`kind`), the `index`th of its rows. */
function KeyValueInputs({ kind, row, change, index, valuePlaceholder = 'value' }) {
  return html`<${RowInput}
      row=${row}
      name="key"
      change=${change}
      label=${`${kind} key`}
      id=${`${kind}-key-${index}`}
      placeholder="key"
    /><${RowInput}
      row=${row}
      name="value"
      change=${change}
      label=${`${kind} value`}
      id=${`${kind}-value-${index}`}
      placeholder=${valuePlaceholder}
    />`;
}

/** Rows of inputs with add and remove buttons. */
function Rows({ rows, onChange, blank, render, addLabel }) {
  const update = (index, change) =>
    onChange(rows.map((row, i) => (i === index ? { ...row, ...change } : row)));
  return html`<div class="rows">
    ${rows.map(
      (row, index) =>
        html`<div class="row-line">
          ${render(row, (change) => update(index, change), index)}
          <button
            type="button"
            class="secondary"
            aria-label="remove row"
            onClick=${() => onChange(rows.filter((_, i) => i !== index))}
          >
            ×
          </button>
        </div>`,
    )}
    <button type="button" class="secondary" onClick=${() => onChange([...rows, { ...blank }])}>
      ${addLabel}
    </button>
  </div>`;
}

function LabelFields({ f, set, err }) {
  return html`<fieldset>
    <legend>Labels to set</legend>
    <${Rows}
      rows=${f.labelRows}
      blank=${{ key: '', value: '' }}
      addLabel="Add label"
      onChange=${(rows) => set('labelRows', rows)}
      render=${(row, change, i) =>
        html`<${KeyValueInputs} kind="label" row=${row} change=${change} index=${i} />`}
    />
    <${FieldError} message=${err('body.params.set')} />
    <${TextField}
      id="label-remove"
      label="Label keys to remove (comma separated)"
      value=${f.labelRemove}
      onInput=${(v) => set('labelRemove', v)}
      error=${err('body.params.remove')}
    />
  </fieldset>`;
}

function EffectSelect({ value, onChange, allowAny, id }) {
  return html`<select
    id=${id}
    aria-label="effect"
    value=${value}
    onChange=${(e) => onChange(e.currentTarget.value)}
  >
    ${allowAny ? html`<option value="">any effect</option>` : null}
    ${EFFECTS.map((effect) => html`<option value=${effect}>${effect}</option>`)}
  </select>`;
}

function TaintFields({ f, set, err }) {
  return html`<fieldset>
      <legend>Taints to add</legend>
      <${Rows}
        rows=${f.taintAdd}
        blank=${{ key: '', value: '', effect: 'NoSchedule' }}
        addLabel="Add taint"
        onChange=${(rows) => set('taintAdd', rows)}
        render=${(row, change, i) =>
          html`<${KeyValueInputs}
              kind="taint"
              row=${row}
              change=${change}
              index=${i}
              valuePlaceholder="value (optional)"
            /><${EffectSelect}
              id=${`taint-effect-${i}`}
              value=${row.effect}
              onChange=${(v) => change({ effect: v })}
            />`}
      />
      <${FieldError} message=${err('body.params.add')} />
    </fieldset>
    <fieldset>
      <legend>Taints to remove</legend>
      <${Rows}
        rows=${f.taintRemove}
        blank=${{ key: '', effect: '' }}
        addLabel="Remove a taint"
        onChange=${(rows) => set('taintRemove', rows)}
        render=${(row, change) =>
          html`<${RowInput}
              row=${row}
              name="key"
              change=${change}
              label="taint key to remove"
              placeholder="key"
            /><${EffectSelect} allowAny value=${row.effect} onChange=${(v) => change({ effect: v })} />`}
      />
      <${FieldError} message=${err('body.params.remove')} />
    </fieldset>`;
}

function CopyTaintFields({ f, set, err, nodes }) {
  return html`<fieldset>
    <legend>Copy taints from a node</legend>
    <${TextField}
      id="copy-from"
      label="Source node"
      placeholder="node name"
      value=${f.copyFrom}
      onInput=${(v) => set('copyFrom', v)}
      error=${err('body.params.copyFrom')}
    />
    <select
      aria-label="pick the source node"
      id="copy-from-picker"
      value=${f.copyFrom ?? ''}
      onChange=${(e) => set('copyFrom', e.currentTarget.value)}
    >
      <option value="">pick a node…</option>
      ${nodes
        .slice(0, 2000)
        .map((node) => html`<option value=${node.name}>${node.name} (${node.taints.length} taints)</option>`)}
    </select>
    <div class="radios" role="radiogroup" aria-label="mode">
      ${['merge', 'replace'].map(
        (mode) =>
          html`<label class="inline"
            ><input
              type="radio"
              name="copy-mode"
              value=${mode}
              checked=${(f.copyMode ?? 'merge') === mode}
              onChange=${() => set('copyMode', mode)}
            />
            ${mode === 'merge' ? 'merge (keep the nodes’ own taints)' : 'replace (drop the nodes’ own taints)'}</label
          >`,
      )}
    </div>
    <${FieldError} message=${err('body.params.mode')} />
  </fieldset>`;
}

const INITIAL_FIELDS = {
  labelRows: [{ key: '', value: '' }],
  taintAdd: [{ key: '', value: '', effect: 'NoSchedule' }],
  taintRemove: [],
  copyMode: 'merge',
};

/** What the form says once the server accepted the batch. */
function startedText({ taskId, dryRun, action }) {
  return dryRun
    ? `Dry run started (task ${taskId}): its rows say per node what would be evicted and what blocks it`
    : `${action} started (task ${taskId})`;
}

/** The button that drains what a dry run looked at. */
function plannedDrainText(count) {
  return `Run drain on the ${count} node${count === 1 ? '' : 's'} of the dry run`;
}

/**
 * `onStarted(taskId)` opens the task the form started. `cluster` is the cluster the node table
 * shows; batches name it (undefined: the gateway's default).
 */
export function ActionPanel({ who, selected, nodes, cluster, onStarted }) {
  const forms = FORMS.filter((form) => who.actions.includes(form.action));
  const [active, setActive] = useState(forms[0]?.id ?? null);
  const [fields, setFields] = useState(INITIAL_FIELDS);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [started, setStarted] = useState(null);
  if (forms.length === 0) return null;
  const form = FORMS.find((candidate) => candidate.id === active) ?? forms[0];
  const set = (key, value) => setFields((current) => ({ ...current, [key]: value }));
  const err = (field) => errorFor(error, field);
  const claimed = [...FIELDS[form.id], ...COMMON_FIELDS].some((field) => err(field));

  /**
   * Starts the form's batch on the selection; `planned`, a dry run's batch, instead drains that
   * dry run's nodes in its cluster with its options (reason and concurrency as the form says now).
   */
  const submit = async (dryRun, planned) => {
    setError(null);
    setStarted(null);
    setBusy(true);
    try {
      const params = planned ? { ...planned.params } : PARAMS[form.id](fields);
      if (dryRun) params.dryRun = true;
      const batch = withoutUndefined({
        action: form.action,
        nodes: planned ? planned.nodes : [...selected],
        params,
        cluster: planned ? planned.cluster : cluster,
      });
      const body = withoutUndefined({
        ...batch,
        reason: fields.reason?.trim() || undefined,
        concurrency: optionalInt(fields.concurrency),
      });
      const { taskId } = await api('POST', '/api/v1/batches', body);
      setStarted({ taskId, dryRun, action: form.label, batch: dryRun ? batch : null });
      onStarted(taskId);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="panel actions" aria-labelledby="actions-title">
    <h2 id="actions-title">Act on ${selected.size} selected node${selected.size === 1 ? '' : 's'}</h2>
    <div class="tabs" role="tablist" aria-label="action">
      ${forms.map(
        (candidate) =>
          html`<button
            type="button"
            role="tab"
            id=${`tab-${candidate.id}`}
            aria-selected=${candidate.id === form.id}
            class=${candidate.id === form.id ? 'tab active' : 'tab'}
            onClick=${() => {
              setActive(candidate.id);
              setError(null);
              setStarted(null);
            }}
          >
            ${candidate.label}
          </button>`,
      )}
    </div>
    <form
      class="action-form"
      data-form=${form.id}
      onSubmit=${(e) => {
        e.preventDefault();
        void submit(false);
      }}
    >
      ${form.id === 'drain' ? html`<${DrainFields} f=${fields} set=${set} err=${err} />` : null}
      ${form.id === 'label' ? html`<${LabelFields} f=${fields} set=${set} err=${err} />` : null}
      ${form.id === 'taint' ? html`<${TaintFields} f=${fields} set=${set} err=${err} />` : null}
      ${form.id === 'copy-taints' ? html`<${CopyTaintFields} f=${fields} set=${set} err=${err} nodes=${nodes} />` : null}
      <div class="grid">
        <${TextField}
          id="action-reason"
          label=${form.id === 'cordon' || form.id === 'drain' ? 'Reason (written on each node)' : 'Reason'}
          placeholder="why"
          value=${fields.reason}
          onInput=${(v) => set('reason', v)}
          error=${err('body.reason')}
        />
        <${TextField}
          id="action-concurrency"
          type="number"
          min="1"
          label="Nodes at once"
          placeholder="default"
          value=${fields.concurrency}
          onInput=${(v) => set('concurrency', v)}
          error=${err('body.concurrency')}
        />
      </div>
      ${
        error && !claimed
          ? html`<p class="field-error form-error" role="alert">
              ${error.status === 403 ? 'Refused: ' : ''}${error.message}
            </p>`
          : null
      }
      <div class="buttons">
        ${
          form.id === 'drain'
            ? html`<button
                type="button"
                id="run-dry-run"
                class="secondary"
                disabled=${busy || selected.size === 0}
                onClick=${() => void submit(true)}
              >
                Dry run
              </button>`
            : null
        }
        <button
          type="submit"
          id="run-action"
          class=${form.id === 'drain' ? 'danger' : ''}
          disabled=${busy || selected.size === 0}
        >
          ${form.label === 'Labels' ? 'Apply labels' : form.label === 'Taints' ? 'Apply taints' : form.label}
          ${selected.size > 0 ? ` ${selected.size} node${selected.size === 1 ? '' : 's'}` : ''}
        </button>
        ${
          form.id === 'drain' && started?.batch
            ? html`<button
                type="button"
                id="run-planned-drain"
                class="danger"
                disabled=${busy}
                title="the nodes, cluster and options of the dry run"
                onClick=${() => {
                  const { dryRun: _, ...params } = started.batch.params;
                  void submit(false, { ...started.batch, params });
                }}
              >
                ${plannedDrainText(started.batch.nodes.length)}
              </button>`
            : null
        }
        ${
          started
            ? html`<span class="muted" role="status" id="action-started">${startedText(started)}</span>`
            : null
        }
      </div>
    </form>
  </section>`;
}

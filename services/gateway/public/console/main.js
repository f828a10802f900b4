// The operator's console: who is signed in, the nodes, actions on the selection, the open task and
// the task history. Views are preact components written with htm (no build step for this code).
import { ApiError, api, forgetToken, keepToken, sessionToken, setTokenCookie } from './api.js';
import { render, useCallback, useEffect, useRef, useState } from './console-lib.js';
import { ActionPanel } from './actions.js';
import { History } from './history.js';
import { NodeTable } from './nodes.js';
import { TaskView } from './task-view.js';
import { TaskWatch } from './task-watch.js';
import { html, useRefresh } from './ui.js';

const READY_REFRESH_MS = 5000;

function SignIn({ onSignedIn, problem }) {
  const [token, setToken] = useState('');
  return html`<main class="sign-in">
    <section class="panel" aria-labelledby="sign-in-title">
      <h2 id="sign-in-title">Sign in</h2>
      <p>Paste your access token (a JWT). It is kept for this browser session only.</p>
      <form
        onSubmit=${(e) => {
          e.preventDefault();
          if (token.trim()) onSignedIn(token.trim());
        }}
      >
        <label
          >Token
          <input
            id="token"
            type="password"
            autocomplete="off"
            value=${token}
            aria-describedby="sign-in-problem"
            onInput=${(e) => setToken(e.currentTarget.value)}
        /></label>
        <button type="submit" id="sign-in">Sign in</button>
      </form>
      ${problem ? html`<p class="field-error" role="alert" id="sign-in-problem">${problem}</p>` : null}
    </section>
  </main>`;
}

/** The notifier's health line from /readyz. */
function Notifier() {
  const [ready, setReady] = useState(null);
  useRefresh(
    async (live) => {
      const response = await fetch('/readyz').catch(() => null);
      const body = response ? await response.json().catch(() => null) : null;
      if (live()) setReady(body);
    },
    READY_REFRESH_MS,
    [],
  );
  const n = ready?.notifier;
  if (!n)
    return html`<span class="notifier muted" id="notifier">notifier: ${ready ? 'ready' : 'checking…'}</span>`;
  return html`<span class="notifier" id="notifier" data-active=${n.active ?? ''}>
    notifier <b>${n.active}</b>
    <span class=${n.healthy ? 'good' : 'bad'}>${n.healthy ? 'healthy' : 'unhealthy'}</span>
    ${n.fallback ? html` <span class="bad" title=${n.reason ?? ''}>fallback</span>` : null}
  </span>`;
}

/**
 * The clusters the gateway knows (GET /api/v1/clusters), null while loading. A failure leaves the
 * list empty: the console then shows the gateway's default cluster, as before clusters had names.
 */
function useClusters() {
  const [clusters, setClusters] = useState(null);
  useEffect(() => {
    let stopped = false;
    api('GET', '/api/v1/clusters')
      .then((answer) => !stopped && setClusters(answer.clusters))
      .catch(() => !stopped && setClusters([]));
    return () => {
      stopped = true;
    };
  }, []);
  return clusters;
}

function Console({ who }) {
  const clusters = useClusters();
  const [picked, setPicked] = useState(null);
  const [selected, setSelected] = useState(() => new Set());
  const [nodes, setNodes] = useState([]);
  const [openTaskId, setOpenTaskId] = useState(null);
  const [, setTick] = useState(0);
  const [cancelError, setCancelError] = useState(null);
  const [historyKey, setHistoryKey] = useState(0);
  const [nodesKey, setNodesKey] = useState(0);
  const watchRef = useRef(null);

  const openTask = useCallback((taskId) => {
    watchRef.current?.close();
    setCancelError(null);
    setOpenTaskId(taskId);
    let wasEnded = false;
    watchRef.current = taskId
      ? new TaskWatch(taskId, (watch) => {
          setTick((n) => n + 1);
          // A task that just ended changed the nodes and the history: show them as they are now.
          if (watch.ended && !wasEnded) {
            wasEnded = true;
            setHistoryKey((n) => n + 1);
            setNodesKey((n) => n + 1);
          }
        })
      : null;
  }, []);
  useEffect(() => () => watchRef.current?.close(), []);

  const onSelect = useCallback((names, on) => {
    setSelected((current) => {
      const next = new Set(current);
      for (const name of names) {
        if (on) next.add(name);
        else next.delete(name);
      }
      return next;
    });
  }, []);

  const cancel = async (taskId) => {
    setCancelError(null);
    try {
      await api('POST', `/api/v1/tasks/${encodeURIComponent(taskId)}/cancel`, {});
    } catch (err) {
      setCancelError(`${err.status === 403 ? 'Refused: ' : ''}${err.message}`);
    }
  };

  if (clusters === null) return html`<main class="muted">Loading…</main>`;
  const cluster = picked ?? (clusters.find((c) => c.default) ?? clusters[0])?.name;
  const pickCluster = (name) => {
    // Node names repeat across clusters: a selection never carries over to another cluster.
    setSelected(new Set());
    setNodes([]);
    setPicked(name);
  };

  const watch = watchRef.current;
  const mayCancel =
    watch !== null &&
    (who.cancelsAnyTask || (watch.state.userId !== null && watch.state.userId === who.userId));
  return html`<main class="console">
    <div class="column">
      <${NodeTable}
        selected=${selected}
        onSelect=${onSelect}
        onLoaded=${(inv) => setNodes(inv.items)}
        refreshKey=${nodesKey}
        cluster=${cluster}
        clusters=${clusters}
        onCluster=${pickCluster}
      />
    </div>
    <div class="column">
      <${ActionPanel}
        who=${who}
        selected=${selected}
        nodes=${nodes}
        cluster=${cluster}
        onStarted=${(taskId) => {
          openTask(taskId);
          setHistoryKey((n) => n + 1);
        }}
      />
      ${
        watch
          ? html`<${TaskView}
              key=${watch.taskId}
              watch=${watch}
              mayCancel=${mayCancel}
              onCancel=${cancel}
              cancelError=${cancelError}
              onClose=${() => openTask(null)}
            />`
          : null
      }
      <${History} who=${who} openTaskId=${openTaskId} onOpen=${openTask} refreshKey=${historyKey} />
    </div>
  </main>`;
}

function App() {
  const [who, setWho] = useState(null);
  const [problem, setProblem] = useState(null);
  const [checked, setChecked] = useState(false);

  const check = useCallback(async () => {
    try {
      const answer = await api('GET', '/api/v1/whoami');
      setWho(answer.signedIn ? answer : null);
      setProblem(null);
    } catch (err) {
      setWho(null);
      if (err instanceof ApiError && err.status === 401) {
        if (sessionToken()) {
          forgetToken();
          setProblem(`The token was refused: ${err.message}`);
        }
      } else setProblem(`Cannot reach the gateway: ${err.message}`);
    } finally {
      setChecked(true);
    }
  }, []);
  useEffect(() => {
    setTokenCookie(sessionToken());
    void check();
  }, []);

  const signOut = () => {
    forgetToken();
    setWho(null);
    setProblem(null);
    void check();
  };

  return html`<header class="top">
      <h1>nodebatch</h1>
      <${Notifier} />
      ${
        who
          ? html`<span class="who" id="who" data-user=${who.userId} data-role=${who.role}>
              <span>${who.userId}</span> <span class="badge role">${who.role}</span>
              ${who.authDisabled ? html`<span class="badge bad" title="AUTH_DISABLED=true">no authentication</span>` : null}
              ${sessionToken() ? html`<button type="button" class="secondary" id="sign-out" onClick=${signOut}>Sign out</button>` : null}
            </span>`
          : null
      }
    </header>
    ${
      who
        ? html`<${Console} who=${who} />`
        : checked
          ? html`<${SignIn}
              problem=${problem}
              onSignedIn=${(token) => {
                keepToken(token);
                void check();
              }}
            />`
          : html`<main class="muted">Loading…</main>`
    }`;
}

render(html`<${App} />`, document.getElementById('app'));

// One task followed live: its events replayed from the log over Server-Sent Events and folded with
// the core's own reducer (bundled into console-lib.js), so the page shows what the server computes.
import { initialTaskState, isTerminalStatus, reduceTask } from './console-lib.js';
import { setTokenCookie, sessionToken } from './api.js';

const EVENT_TYPES = [
  'TaskCreated',
  'TaskStarted',
  'NodeStarted',
  'NodeProgress',
  'NodeRetrying',
  'NodeSucceeded',
  'NodeFailed',
  'NodeSkipped',
  'CancelRequested',
  'TaskCancelled',
  'TaskCompleted',
  'TaskFailed',
];
/** Events that arrive within this many ms are shown in one render (a 1,000-node drain sends thousands). */
const RENDER_DELAY_MS = 50;
/** How long to wait before opening a stream again after the gateway refused or closed it. */
const REOPEN_DELAY_MS = 2000;

/**
 * Follows one task from seq 0: the whole history is read from the log, then live events. A
 * reconnect (the gateway restarted, the network dropped) resumes after the last folded seq:
 * EventSource sends Last-Event-ID by itself, and a stream the browser gave up on is opened again
 * with ?after=. `onChange` is called after each change, at most once per RENDER_DELAY_MS.
 */
export class TaskWatch {
  #source = null;
  #timer = null;
  #frame = 0;
  #closed = false;
  #onChange;

  constructor(taskId, onChange) {
    this.taskId = taskId;
    this.state = initialTaskState(taskId);
    /** Whether a stream is open; `note` says why not, or that it reconnects. */
    this.live = false;
    this.note = 'connecting…';
    /** Events folded, and events received again (a resume must repeat none). */
    this.applied = 0;
    this.duplicates = 0;
    this.#onChange = onChange;
    this.#open();
  }

  get ended() {
    return isTerminalStatus(this.state.status);
  }

  close() {
    this.#closed = true;
    this.#stop();
    clearTimeout(this.#timer);
    clearTimeout(this.#frame);
  }

  #open() {
    if (this.#closed || this.ended) return;
    setTokenCookie(sessionToken());
    const url = `/api/v1/tasks/${encodeURIComponent(this.taskId)}/events?after=${this.state.lastSeq}`;
    const source = new EventSource(url);
    this.#source = source;
    const onEvent = (message) => {
      const event = JSON.parse(message.data);
      if (event.seq <= this.state.lastSeq) this.duplicates++;
      else this.applied++;
      this.state = reduceTask(this.state, event);
      if (this.ended) {
        this.#stop();
        this.note = '';
      }
      this.#changed();
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.onopen = () => {
      this.live = true;
      this.note = '';
      this.#changed();
    };
    source.onerror = () => {
      if (this.#source !== source) return;
      this.live = false;
      this.note = 'reconnecting…';
      if (source.readyState === EventSource.CLOSED) {
        // The gateway answered with an error (restarting, 401, 404): EventSource gives up, so
        // open again from the last folded seq a little later.
        this.#stop();
        this.#timer = setTimeout(() => this.#open(), REOPEN_DELAY_MS);
      }
      this.#changed();
    };
  }

  #stop() {
    this.#source?.close();
    this.#source = null;
    this.live = false;
  }

  #changed() {
    if (this.#frame) return;
    this.#frame = setTimeout(() => {
      this.#frame = 0;
      this.#onChange(this);
    }, RENDER_DELAY_MS);
  }
}

import type pg from 'pg';
import { pino, type Logger } from 'pino';

/** What one audit row says. Request rows come from the gateway; outcome rows from the log itself. */
export interface AuditEntry {
  /** `request`: someone asked (allowed or denied); `outcome`: a task ended. */
  kind: 'request' | 'outcome';
  userId: string;
  role?: string | undefined;
  /** Address of the client as the gateway saw it (after trusted proxies). */
  clientAddress?: string | undefined;
  /** The batch action (`drain`, …), `cancel`, or another route's name. */
  action: string;
  taskId?: string | undefined;
  nodes?: readonly string[] | undefined;
  selector?: string | undefined;
  cluster?: string | undefined;
  reason?: string | undefined;
  params?: unknown;
  decision?: 'allowed' | 'denied' | undefined;
  /** The policy rule that decided (for a denial, the one that refused). */
  rule?: string | undefined;
  message?: string | undefined;
}

/** An audit row as read back. */
export interface AuditRecord {
  id: string;
  time: string;
  kind: 'request' | 'outcome';
  userId: string;
  role: string | null;
  clientAddress: string | null;
  action: string;
  taskId: string | null;
  nodes: string[];
  nodeCount: number;
  selector: string | null;
  cluster: string | null;
  reason: string | null;
  params: unknown;
  decision: 'allowed' | 'denied' | null;
  rule: string | null;
  message: string | null;
  /** Outcome rows: completed, failed or cancelled. */
  status: string | null;
  /** Outcome rows: per node, `{status: succeeded | failed | skipped | not started, error?, reason?}`. */
  outcome: Record<string, { status: string; error?: string; reason?: string }> | null;
}

/** Filters of {@link AuditLog.list}; all optional, combined with AND. */
export interface AuditQuery {
  userId?: string;
  action?: string;
  /** Rows that name this node. */
  node?: string;
  taskId?: string;
  /** ISO-8601; rows at or after. */
  since?: string;
  /** ISO-8601; rows strictly before. */
  until?: string;
  /** Rows with an id below this one (the `nextCursor` of the previous page). */
  before?: string;
  /** Rows per page. Default 100, at most 1000. */
  limit?: number;
}

export interface AuditPage {
  entries: AuditRecord[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

export interface AuditLogOptions {
  /** The pool of the event store's database (its migrations create the table); never ended here. */
  pool: Pick<pg.Pool, 'query'>;
  /** Default: silent. */
  logger?: Logger;
}

export interface AuditRetentionJob {
  stop(): Promise<void>;
}

/** The append-only audit trail in PostgreSQL (invariant 11). */
export interface AuditLog {
  record(entry: AuditEntry): Promise<void>;
  /** Newest first. */
  list(query?: AuditQuery): Promise<AuditPage>;
  /** The owner of an accepted batch, from the trail; null when it never existed. Finds tasks whose events retention deleted. */
  acceptedTaskOwner(taskId: string): Promise<string | null>;
  /** Deletes rows older than `olderThanMs`; returns how many. */
  deleteExpired(olderThanMs: number): Promise<number>;
  /** Runs deleteExpired now and then every `intervalMs` (default 1 hour). */
  startRetentionJob(options: { olderThanMs: number; intervalMs?: number }): AuditRetentionJob;
}

export const DEFAULT_AUDIT_RETENTION_MS = 365 * 24 * 60 * 60 * 1000;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

const COLUMNS = `id::text AS id, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time,
  kind, user_id, role, client_address, action, task_id, nodes, node_count, selector, cluster, reason,
  params, decision, rule, message, status, outcome`;

export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { pool } = options;
  const logger = options.logger ?? pino({ level: 'silent' });

  const deleteExpired = async (olderThanMs: number): Promise<number> => {
    const result = await pool.query(
      `DELETE FROM audit_log WHERE time < now() - make_interval(secs => $1::double precision / 1000)`,
      [olderThanMs],
    );
    return result.rowCount ?? 0;
  };

  return {
    async record(entry) {
      await pool.query(
        `INSERT INTO audit_log (kind, user_id, role, client_address, action, task_id, nodes, node_count,
           selector, cluster, reason, params, decision, rule, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
        [
          entry.kind,
          entry.userId,
          entry.role ?? null,
          entry.clientAddress ?? null,
          entry.action,
          entry.taskId ?? null,
          entry.nodes ?? [],
          entry.nodes?.length ?? 0,
          entry.selector ?? null,
          entry.cluster ?? null,
          entry.reason ?? null,
          entry.params === undefined ? null : JSON.stringify(entry.params),
          entry.decision ?? null,
          entry.rule ?? null,
          entry.message ?? null,
        ],
      );
    },

    async list(query = {}) {
      const limit = Math.min(Math.max(1, Math.trunc(query.limit ?? DEFAULT_PAGE)), MAX_PAGE);
      const where: string[] = [];
      const values: unknown[] = [];
      const add = (clause: (p: string) => string, value: unknown) => {
        values.push(value);
        where.push(clause(`$${values.length}`));
      };
      if (query.userId !== undefined) add((p) => `user_id = ${p}`, query.userId);
      if (query.action !== undefined) add((p) => `action = ${p}`, query.action);
      if (query.node !== undefined) add((p) => `nodes @> ARRAY[${p}::text]`, query.node);
      if (query.taskId !== undefined) add((p) => `task_id = ${p}`, query.taskId);
      if (query.since !== undefined) add((p) => `time >= ${p}::timestamptz`, query.since);
      if (query.until !== undefined) add((p) => `time < ${p}::timestamptz`, query.until);
      if (query.before !== undefined) add((p) => `id < ${p}::bigint`, query.before);
      values.push(limit + 1);
      const { rows } = await pool.query<AuditRow>(
        `SELECT ${COLUMNS} FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY id DESC LIMIT $${values.length}`,
        values,
      );
      const entries = rows.slice(0, limit).map(recordOf);
      return { entries, nextCursor: rows.length > limit ? (entries.at(-1)?.id ?? null) : null };
    },

    async acceptedTaskOwner(taskId) {
      const { rows } = await pool.query<{ user_id: string }>(
        `SELECT user_id FROM audit_log
         WHERE task_id = $1 AND kind = 'request' AND decision = 'allowed' AND action <> 'cancel' LIMIT 1`,
        [taskId],
      );
      return rows[0]?.user_id ?? null;
    },

    deleteExpired,

    startRetentionJob({ olderThanMs, intervalMs = 60 * 60 * 1000 }) {
      const log = logger.child({ job: 'audit-retention' });
      let failing = false;
      let running: Promise<void> | undefined;
      const run = async (): Promise<void> => {
        try {
          const deleted = await deleteExpired(olderThanMs);
          if (failing) log.info('audit retention works again');
          failing = false;
          if (deleted > 0) log.info({ deleted, olderThanMs }, 'deleted expired audit rows');
        } catch (err) {
          // Logged once per outage, not once per interval.
          if (!failing) log.error({ err }, 'audit retention failed; retrying every interval');
          failing = true;
        }
      };
      running = run();
      const timer = setInterval(() => {
        running = (running ?? Promise.resolve()).then(run);
      }, intervalMs);
      timer.unref();
      return {
        stop: async () => {
          clearInterval(timer);
          await running;
        },
      };
    },
  };
}

interface AuditRow {
  id: string;
  time: string;
  kind: 'request' | 'outcome';
  user_id: string;
  role: string | null;
  client_address: string | null;
  action: string;
  task_id: string | null;
  nodes: string[];
  node_count: number;
  selector: string | null;
  cluster: string | null;
  reason: string | null;
  params: unknown;
  decision: 'allowed' | 'denied' | null;
  rule: string | null;
  message: string | null;
  status: string | null;
  outcome: AuditRecord['outcome'];
}

function recordOf(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    time: row.time,
    kind: row.kind,
    userId: row.user_id,
    role: row.role,
    clientAddress: row.client_address,
    action: row.action,
    taskId: row.task_id,
    nodes: row.nodes,
    nodeCount: row.node_count,
    selector: row.selector,
    cluster: row.cluster,
    reason: row.reason,
    params: row.params,
    decision: row.decision,
    rule: row.rule,
    message: row.message,
    status: row.status,
    outcome: row.outcome,
  };
}

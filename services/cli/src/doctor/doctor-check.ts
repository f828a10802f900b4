/** The outcome of one doctor check. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** How long the check took, in milliseconds. */
  ms: number;
  /** One line: what was seen (never a password). */
  detail: string;
  /** For a failure: what to look at, tailored to the error. */
  checklist?: string[];
}

/** Marks a check as passed with a warning: it works, but not as configured. */
export class CheckWarning extends Error {
  constructor(
    message: string,
    readonly checklist: string[] = [],
  ) {
    super(message);
    this.name = 'CheckWarning';
  }
}

/** A failed check that already carries its diagnosis. */
export class CheckFailure extends Error {
  constructor(
    message: string,
    readonly checklist: string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CheckFailure';
  }
}

/** Runs one check and times it: its detail on success, a CheckWarning or CheckFailure otherwise. */
export async function runCheck(name: string, check: () => Promise<string>): Promise<CheckResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const detail = await check();
    return { name, status: 'ok', ms: ms(), detail };
  } catch (error) {
    if (error instanceof CheckWarning) {
      return { name, status: 'warn', ms: ms(), detail: error.message, checklist: error.checklist };
    }
    const checklist = error instanceof CheckFailure ? error.checklist : [];
    return { name, status: 'fail', ms: ms(), detail: (error as Error).message, checklist };
  }
}

export function skipped(name: string, reason: string): CheckResult {
  return { name, status: 'skipped', ms: 0, detail: reason };
}

const ICONS: Record<CheckStatus, string> = { ok: '✅', warn: '⚠️ ', fail: '❌', skipped: '⏭️ ' };

export function formatCheck(result: CheckResult): string {
  const head = `${ICONS[result.status]} ${result.name.padEnd(12)} ${`${result.ms} ms`.padStart(8)}  ${result.detail}`;
  return [head, ...(result.checklist ?? []).map((line) => `      - ${line}`)].join('\n');
}

import { DOCS_BASE, isDevclusterError } from '../ui/errors.ts';
import { decodePowerShell } from '../host/powershell.ts';
import { displayArg, redact, redactArgs } from '../ui/redact.ts';
import { errorText } from './outcome.ts';
import { allChecks, isApplicable, whyNotApplicable } from './registry.ts';
import type { Check, CheckContext, CheckOutcome, CheckResult, DoctorContext, Evidence, ExecFn } from './types.ts';

export const DEFAULT_CHECK_TIMEOUT_MS = 15_000;
const EVIDENCE_LIMIT = 4000;

export function checkDocs(id: string): string {
  return `${DOCS_BASE}/doctor.md#${id.toLowerCase()}`;
}

function clip(text: string): string {
  const t = redact(text);
  return t.length > EVIDENCE_LIMIT ? `${t.slice(0, EVIDENCE_LIMIT)}\n... (${t.length - EVIDENCE_LIMIT} more characters)` : t;
}

/** A command line for evidence: secrets redacted, PowerShell's encoded script shown decoded. */
export function displayCommand(command: string, args: readonly string[]): string {
  const i = args.indexOf('-EncodedCommand');
  if (i >= 0 && args[i + 1] !== undefined) {
    const script = decodePowerShell(args[i + 1] as string);
    return `${[command, ...args.slice(0, i)].map(displayArg).join(' ')} -Command <<'EOF'\n${redact(script)}\nEOF`;
  }
  return [command, ...redactArgs(args)].map(displayArg).join(' ');
}

/** Wraps exec so every command a check runs is kept as its evidence. */
function recordingExec(exec: ExecFn, evidence: Evidence[], signal: AbortSignal): ExecFn {
  return async (command, args, options = {}) => {
    const shown = displayCommand(command, args);
    const started = performance.now();
    try {
      const r = await exec(command, args, { ...options, signal: options.signal ?? signal });
      evidence.push({ command: shown, exitCode: r.exitCode, stdout: clip(r.stdout), stderr: clip(r.stderr), durationMs: Math.round(performance.now() - started) });
      return r;
    } catch (e) {
      const details = isDevclusterError(e) ? e.details : {};
      evidence.push({
        command: shown,
        ...(typeof details['exitCode'] === 'number' ? { exitCode: details['exitCode'] } : {}),
        ...(typeof details['stderrTail'] === 'string' && details['stderrTail'] !== '' ? { stderr: clip(details['stderrTail']) } : {}),
        error: errorText(e),
        durationMs: Math.round(performance.now() - started),
      });
      throw e;
    }
  };
}

type Memo = Map<string, { promise: Promise<unknown>; evidence: Evidence[] }>;

function checkContext(ctx: DoctorContext, signal: AbortSignal, evidence: Evidence[], memo: Memo): CheckContext {
  const self: CheckContext = {
    ...ctx,
    signal,
    exec: recordingExec(ctx.exec, evidence, signal),
    execElevated: recordingExec(ctx.execElevated, evidence, signal),
    evidence(entry) {
      evidence.push({ ...entry, ...(entry.stdout === undefined ? {} : { stdout: clip(entry.stdout) }), ...(entry.stderr === undefined ? {} : { stderr: clip(entry.stderr) }) });
    },
    async memo<T>(key: string, compute: (c: CheckContext) => Promise<T>): Promise<T> {
      let entry = memo.get(key);
      if (entry === undefined) {
        const shared: Evidence[] = [];
        entry = { promise: compute(checkContext(ctx, signal, shared, memo)), evidence: shared };
        memo.set(key, entry);
      }
      try {
        return (await entry.promise) as T;
      } finally {
        evidence.push(...entry.evidence);
      }
    },
  };
  return self;
}

function result(check: Check, outcome: CheckOutcome, evidence: Evidence[], durationMs: number, muted: readonly string[]): CheckResult {
  return {
    id: check.id,
    title: check.title,
    category: check.category,
    fatal: check.fatal === true,
    status: outcome.status,
    summary: outcome.summary,
    details: outcome.details ?? [],
    ...(outcome.fix === undefined ? {} : { fix: outcome.fix }),
    docs: outcome.docs ?? checkDocs(check.id),
    related: outcome.related ?? [],
    muted: outcome.status === 'warn' && muted.includes(check.id),
    exitCode: check.exitCode,
    evidence,
    durationMs,
  };
}

async function runOne(check: Check, ctx: DoctorContext, memo: Memo, muted: readonly string[]): Promise<CheckResult> {
  const evidence: Evidence[] = [];
  const controller = new AbortController();
  const timeoutMs = check.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`the check did not finish within ${Math.round(timeoutMs / 1000)}s`));
    }, timeoutMs);
  });
  let outcome: CheckOutcome;
  try {
    outcome = await Promise.race([check.run(checkContext(ctx, controller.signal, evidence, memo)), timeout]);
  } catch (e) {
    // A check that crashes reports itself; it never ends the run.
    outcome = { status: 'error', summary: `the check could not run: ${errorText(e)}`, details: e instanceof Error && e.stack !== undefined && !isDevclusterError(e) ? [e.stack.split('\n').slice(0, 4).join('\n')] : [] };
  } finally {
    clearTimeout(timer);
  }
  return result(check, outcome, evidence, Math.round(performance.now() - started), muted);
}

export interface RunChecksOptions {
  /** Only these IDs (their prerequisites run too, unseen). */
  only?: readonly string[];
  /** The pool to choose from; all registered checks by default. */
  checks?: readonly Check[];
  /** IDs whose warnings are hidden (doctor.muted). */
  muted?: readonly string[];
}

/**
 * Runs the applicable checks concurrently; a check waits for its
 * prerequisites and is skipped when one of them did not pass or warn.
 * Results come back in display order.
 */
export async function runChecks(ctx: DoctorContext, options: RunChecksOptions = {}): Promise<CheckResult[]> {
  const pool = options.checks ?? allChecks();
  const byId = new Map(pool.map((c) => [c.id, c]));
  const wanted = new Set(options.only ?? pool.map((c) => c.id));
  const toRun = new Set<string>();
  const add = (id: string) => {
    if (toRun.has(id)) return;
    const c = byId.get(id);
    if (c === undefined) return;
    toRun.add(id);
    for (const r of c.requires ?? []) add(r);
  };
  for (const id of wanted) add(id);

  const muted = options.muted ?? [];
  const memo: Memo = new Map();
  const running = new Map<string, Promise<CheckResult>>();
  const start = (check: Check): Promise<CheckResult> => {
    const existing = running.get(check.id);
    if (existing !== undefined) return existing;
    const promise = (async () => {
      const notHere = whyNotApplicable(check, ctx);
      if (notHere !== undefined) return result(check, { status: 'skip', summary: notHere }, [], 0, muted);
      for (const reqId of check.requires ?? []) {
        const req = byId.get(reqId);
        if (req === undefined || !toRun.has(reqId)) continue;
        const r = await start(req);
        if (r.status === 'skip') return result(check, { status: 'skip', summary: r.summary }, [], 0, muted);
        if (r.status === 'fail' || r.status === 'error') {
          return result(check, { status: 'skip', summary: `skipped because "${r.title}" ${r.status === 'fail' ? 'failed' : 'could not run'}` }, [], 0, muted);
        }
      }
      return runOne(check, ctx, memo, muted);
    })();
    running.set(check.id, promise);
    return promise;
  };
  const ordered = pool.filter((c) => toRun.has(c.id));
  const results = await Promise.all(ordered.map((c) => start(c)));
  // Prerequisites pulled in for a named check are not shown; inapplicable checks are only shown when named.
  return results.filter((r) => wanted.has(r.id) && (options.only !== undefined || isApplicable(byId.get(r.id) as Check, ctx)));
}

/** The context a fix's apply() runs with: its commands are recorded like a check's. */
export function fixContext(ctx: DoctorContext, evidence: Evidence[]): CheckContext {
  return checkContext(ctx, new AbortController().signal, evidence, new Map());
}

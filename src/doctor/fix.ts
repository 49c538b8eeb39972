import type { Output } from '../ui/output.ts';
import { errorText } from './outcome.ts';
import { isProblem } from './report.ts';
import { fixLines, requirementText, statusBox } from './render.ts';
import { allChecks } from './registry.ts';
import { fixContext, runChecks } from './runner.ts';
import type { Check, CheckResult, DoctorContext, Evidence } from './types.ts';

export type FixStatus = 'fixed' | 'pending' | 'still-failing' | 'failed' | 'declined' | 'not-run';

export interface FixOutcome {
  id: string;
  status: FixStatus;
  message: string;
  evidence: Evidence[];
}

export interface FixOptions {
  /** --yes: agree without asking (scripts). */
  yes: boolean;
  /** Someone can answer a prompt: stdin and stdout are terminals. */
  interactive: boolean;
  confirm(message: string): Promise<boolean>;
  out: Output;
  muted?: readonly string[];
  /** The checks to run again after fixing; all registered checks by default. */
  checks?: readonly Check[];
}

export interface FixRun {
  outcomes: FixOutcome[];
  /** The results with re-run checks replaced. */
  results: CheckResult[];
}

/**
 * `doctor --fix`: shows every change with its exact commands, asks once per
 * elevation boundary, applies, then runs the affected checks again. Fixes
 * that need a reboot, a new sign-in or a new terminal are reported as
 * pending, never as done.
 */
export async function applyFixes(ctx: DoctorContext, results: CheckResult[], options: FixOptions): Promise<FixRun> {
  const { out } = options;
  const candidates = results.filter((r) => isProblem(r) && r.fix?.apply !== undefined);
  const outcomes: FixOutcome[] = [];
  out.line('');
  if (candidates.length === 0) {
    const manual = results.some((r) => isProblem(r) && r.fix !== undefined);
    out.line(manual ? 'Nothing can be fixed automatically; the fixes shown above are for you to apply.' : 'Nothing to fix.');
    return { outcomes, results };
  }
  const groups = [
    { elevated: false, items: candidates.filter((r) => r.fix?.elevated !== true) },
    { elevated: true, items: candidates.filter((r) => r.fix?.elevated === true) },
  ];
  const rerun: string[] = [];
  for (const group of groups) {
    if (group.items.length === 0) continue;
    out.line(group.elevated ? (ctx.host.platform === 'win32' ? 'These changes need Administrator rights:' : 'These changes need root (sudo):') : 'These changes will be made:');
    for (const r of group.items) {
      const fix = r.fix;
      if (fix === undefined) continue;
      out.line(`  ${out.paint('bold', r.id)} (${r.title})`);
      for (const l of fixLines(out, r.id, { ...fix, apply: undefined }, '    ', ctx.host.platform)) out.line(l);
      if (fix.applyDescription !== undefined) out.line(`    doctor --fix will ${fix.applyDescription}.`);
      if (fix.disruptive === true) out.line('    This interrupts what is running.');
    }
    if (group.elevated && ctx.host.platform === 'win32') {
      out.line('Run these commands in a PowerShell window opened with "Run as administrator"; nothing was changed.');
      for (const r of group.items) outcomes.push({ id: r.id, status: 'not-run', message: 'needs an Administrator PowerShell', evidence: [] });
      continue;
    }
    let agreed = options.yes;
    if (!agreed && !options.interactive) {
      out.line('No terminal to confirm on, so nothing was changed. Run `devcluster doctor --fix --yes` to make these changes.');
      for (const r of group.items) outcomes.push({ id: r.id, status: 'not-run', message: 'not confirmed (no terminal)', evidence: [] });
      continue;
    }
    if (!agreed) agreed = await options.confirm(group.elevated ? 'Make these changes as root?' : 'Make these changes?');
    if (!agreed) {
      for (const r of group.items) outcomes.push({ id: r.id, status: 'declined', message: 'declined', evidence: [] });
      continue;
    }
    for (const r of group.items) {
      const fix = r.fix;
      if (fix?.apply === undefined) continue;
      const evidence: Evidence[] = [];
      try {
        await fix.apply(fixContext(ctx, evidence));
      } catch (e) {
        outcomes.push({ id: r.id, status: 'failed', message: `the fix failed: ${errorText(e)}`, evidence });
        continue;
      }
      if (fix.requires !== undefined && fix.requires.length > 0) {
        outcomes.push({ id: r.id, status: 'pending', message: `applied; takes effect after you ${requirementText(fix.requires)}`, evidence });
      } else {
        outcomes.push({ id: r.id, status: 'fixed', message: 'applied', evidence });
        rerun.push(r.id);
      }
    }
  }

  let updated = results;
  if (rerun.length > 0) {
    // Dependents of a fixed check may have been skipped because of it.
    const pool = options.checks ?? allChecks();
    const dependents = pool.filter((c) => (c.requires ?? []).some((id) => rerun.includes(id))).map((c) => c.id);
    const ids = [...new Set([...rerun, ...dependents])].filter((id) => results.some((r) => r.id === id));
    const again = await runChecks(ctx, { only: ids, muted: options.muted ?? [], checks: pool });
    updated = results.map((r) => again.find((a) => a.id === r.id) ?? r);
    for (const o of outcomes) {
      if (o.status !== 'fixed') continue;
      const now = again.find((a) => a.id === o.id);
      if (now !== undefined && (now.status === 'fail' || now.status === 'warn' || now.status === 'error')) {
        o.status = 'still-failing';
        o.message = `applied, but the check still reports: ${now.summary}`;
      } else if (now !== undefined) {
        o.message = `fixed: ${now.summary}`;
      }
    }
  }

  out.line('');
  for (const o of outcomes) {
    const box = o.status === 'fixed' ? statusBox(out, 'pass') : o.status === 'pending' || o.status === 'not-run' || o.status === 'declined' ? statusBox(out, 'warn') : statusBox(out, 'fail');
    out.line(`${box} ${o.id}: ${o.message}`);
  }
  return { outcomes, results: updated };
}

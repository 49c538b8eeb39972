import type { Color, Output } from '../ui/output.ts';
import { commandsForPlatform } from './shell.ts';
import { CATEGORIES, CATEGORY_TITLES } from './types.ts';
import type { Check, CheckResult, CheckStatus, DoctorReport, Evidence, Fix, FixCommand, FixRequirement } from './types.ts';

/**
 * The doctor's text output: one line per check, grouped by category, with
 * `[✓] [!] [✗] [-]` (ASCII `[OK] [WARN] [FAIL] [SKIP]` where the console
 * cannot show them), problems explained underneath, and a closing summary.
 */
const STATUS_COLOR: Record<CheckStatus, Color> = { pass: 'green', warn: 'yellow', fail: 'red', skip: 'gray', error: 'magenta' };

export function statusBox(out: Output, status: CheckStatus): string {
  const s = out.symbols;
  const inner = { pass: s.ok, warn: s.warn, fail: s.fail, skip: s.skip, error: out.unicode ? '?' : 'ERR' }[status];
  return out.paint(STATUS_COLOR[status], `[${inner}]`);
}

const REQUIREMENT_TEXT: Record<FixRequirement, string> = {
  reboot: 'restart the computer',
  relogin: 'sign out and back in',
  'new-shell': 'open a new terminal',
};

export function requirementText(requires: readonly FixRequirement[]): string {
  return requires.map((r) => REQUIREMENT_TEXT[r]).join(' and ');
}

function commandLabel(c: FixCommand): string {
  if (c.target === 'guest') return 'in the VM';
  const who = c.elevated ? (c.shell === 'powershell' || c.shell === 'cmd' ? ' (as Administrator)' : ' (as root)') : '';
  return `${c.shell}${who}`;
}

/** The lines that show a fix: its description, then each command with its shell or file. */
export function fixLines(out: Output, id: string, fix: Fix, indent: string, platform: NodeJS.Platform): string[] {
  const lines = [`${indent}Fix: ${fix.description}`];
  const commands = commandsForPlatform(fix.commands, platform);
  const plain = commands.filter((c) => c.file === undefined);
  const width = Math.max(0, ...plain.map((c) => commandLabel(c).length));
  for (const c of commands) {
    if (c.file === undefined) lines.push(`${indent}  ${commandLabel(c).padEnd(width)}  ${out.paint('cyan', c.run)}`);
    else lines.push(`${indent}  ${c.shell}: add to ${c.file}`, `${indent}    ${out.paint('cyan', c.run)}`);
  }
  if (fix.apply !== undefined) {
    const after = fix.requires !== undefined && fix.requires.length > 0 ? ` (then ${requirementText(fix.requires)})` : '';
    lines.push(`${indent}  Automatic: devcluster doctor --fix ${id}${after}`);
  } else if (fix.requires !== undefined && fix.requires.length > 0) {
    lines.push(`${indent}  Afterwards: ${requirementText(fix.requires)}.`);
  }
  return lines;
}

export function evidenceLines(out: Output, evidence: readonly Evidence[], indent: string): string[] {
  const lines: string[] = [];
  for (const e of evidence) {
    const meta = [e.exitCode === undefined ? undefined : `exit ${e.exitCode}`, e.durationMs === undefined ? undefined : `${e.durationMs}ms`].filter((x) => x !== undefined).join(', ');
    lines.push(out.paint('gray', `${indent}$ ${e.command.split('\n').join(`\n${indent}  `)}${meta === '' ? '' : `   (${meta})`}`));
    const body = (label: string, text: string | undefined) => {
      if (text === undefined || text.trim() === '') return;
      for (const l of text.trimEnd().split('\n').slice(0, 40)) lines.push(out.paint('gray', `${indent}  ${label}${l}`));
    };
    body('', e.stdout);
    body('stderr: ', e.stderr);
    body('error: ', e.error);
  }
  return lines;
}

export interface RenderOptions {
  verbose: boolean;
  includeMuted: boolean;
  /** Whose shells the fix commands are shown for; the report's host by default. */
  platform?: NodeJS.Platform;
}

export function resultLines(out: Output, r: CheckResult, options: RenderOptions, titleWidth: number): string[] {
  const lines: string[] = [];
  const mutedNote = r.muted ? out.paint('gray', ' (muted)') : '';
  lines.push(`${statusBox(out, r.status)} ${`${r.title}:`.padEnd(titleWidth + 1)} ${r.summary}${mutedNote}`);
  const indent = '    ';
  const problem = r.status === 'fail' || r.status === 'warn' || r.status === 'error';
  if (problem) lines.push(`${indent}${out.paint('bold', r.id)}  ${out.paint('gray', r.docs)}`);
  if (problem || options.verbose) for (const d of r.details) lines.push(`${indent}${out.symbols.bullet} ${d}`);
  if (r.fix !== undefined && (r.status === 'fail' || r.status === 'warn')) lines.push(...fixLines(out, r.id, r.fix, indent, options.platform ?? process.platform));
  if (options.verbose) {
    if (r.related.length > 0) lines.push(`${indent}Related: ${r.related.map(issueUrl).join(', ')}`);
    lines.push(...evidenceLines(out, r.evidence, indent));
  }
  return lines;
}

export function issueUrl(ref: string): string {
  const m = /^([\w.-]+\/[\w.-]+)#(\d+)$/.exec(ref);
  return m === null ? ref : `https://github.com/${m[1]}/issues/${m[2]}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The closing line: "2 problems, 1 warning; 1 can be fixed automatically: devcluster doctor --fix". */
export function summaryLine(out: Output, report: DoctorReport, includeMuted: boolean): string {
  const s = report.summary;
  const parts: string[] = [];
  if (s.fail > 0) parts.push(plural(s.fail, 'problem'));
  if (s.warn > 0) parts.push(plural(s.warn, 'warning'));
  // Checks that were all skipped (named ones that do not apply here) found nothing, and say so.
  const nothingRan = s.pass === 0 && s.fail === 0 && s.warn === 0 && s.error === 0 && s.skip > 0;
  let text = parts.length > 0 ? parts.join(', ') : nothingRan ? 'No check applied here, so nothing was checked.' : 'No problems found.';
  if (s.fixable > 0) text += `; ${s.fixable} can be fixed automatically: devcluster doctor --fix`;
  else if (parts.length > 0) text += '.';
  const extra: string[] = [];
  if (s.error > 0) extra.push(`${plural(s.error, 'check')} could not run`);
  if (s.muted > 0) extra.push(`${plural(s.muted, 'muted warning')}${includeMuted ? '' : ' hidden (--include-muted shows them)'}`);
  if (extra.length > 0) text += ` (${extra.join('; ')})`;
  const symbol = s.fail > 0 ? out.paint('red', out.unicode ? '✗' : 'X') : s.warn > 0 ? out.paint('yellow', '!') : nothingRan ? out.symbols.skip : out.paint('green', out.symbols.ok);
  return `${symbol} ${text}`;
}

export function renderReport(out: Output, report: DoctorReport, options: RenderOptions): void {
  const driver = `${report.driver.name}${report.driver.source === 'auto' ? ', chosen automatically' : ''}`;
  const hint = options.verbose ? '' : '; run `devcluster doctor -v` for details';
  out.line(`Doctor summary for profile "${report.profile}" (driver ${driver})${hint}:`);
  const shown = report.checks.filter((r) => options.includeMuted || !r.muted);
  const titleWidth = Math.max(0, ...shown.map((r) => r.title.length));
  for (const cat of CATEGORIES) {
    const inCat = shown.filter((r) => r.category === cat);
    if (inCat.length === 0) continue;
    out.line('');
    out.line(out.paint('bold', CATEGORY_TITLES[cat]));
    const opts = { ...options, platform: options.platform ?? (report.host.platform as NodeJS.Platform) };
    for (const r of inCat) for (const l of resultLines(out, r, opts, titleWidth)) out.line(l);
  }
  out.line('');
  out.line(summaryLine(out, report, options.includeMuted));
}

/** `doctor --list`: every check, what it looks at, and where it applies. */
export function renderCheckList(out: Output, checks: readonly Check[]): void {
  for (const cat of CATEGORIES) {
    const inCat = checks.filter((c) => c.category === cat);
    if (inCat.length === 0) continue;
    out.line(out.paint('bold', CATEGORY_TITLES[cat]));
    for (const c of inCat) {
      const where = [c.platforms?.length ? c.platforms.join(', ') : undefined, c.drivers?.length ? `driver ${c.drivers.join(', ')}` : undefined].filter((x) => x !== undefined).join('; ');
      out.line(`  ${out.paint('bold', c.id)}${c.fatal === true ? ' (checked before start)' : ''}${where === '' ? '' : ` [${where}]`}`);
      out.line(`      ${c.title}: ${c.looksAt}`);
    }
    out.line('');
  }
}

export function checkListJson(checks: readonly Check[]): unknown {
  return {
    schemaVersion: 1,
    checks: checks.map((c) => ({
      id: c.id,
      title: c.title,
      category: c.category,
      looksAt: c.looksAt,
      platforms: c.platforms ?? [],
      drivers: c.drivers ?? [],
      requires: c.requires ?? [],
      fatal: c.fatal === true,
      exitCode: c.exitCode,
    })),
  };
}


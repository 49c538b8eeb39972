import type { Command } from 'commander';
import { action } from './run-command.ts';
import type { CommandContext } from './run-command.ts';
import type { DoctorContext } from '../doctor/types.ts';
import { withExamples } from './examples.ts';
import { GROUP_TROUBLESHOOTING } from './groups.ts';

export function registerDoctor(program: Command): void {
  const cmd = program
    .command('doctor [ids...]')
    .description('Check this machine for what would stop or slow a cluster, and fix what can be fixed')
    .helpGroup(GROUP_TROUBLESHOOTING)
    .option('--driver <name>', 'check for this driver instead of the configured one')
    .option('--list', 'list every check with its ID and what it looks at')
    .option('--fix', 'apply the automatic fixes, after showing their commands and asking')
    .option('-y, --yes', 'with --fix: make the changes without asking (for scripts)')
    .option('--include-muted', 'also show warnings muted with the doctor.muted setting')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(action(async (ctx, ids, opts) => doctor(ctx, ids, opts), { formats: ['text', 'json'] }));
  withExamples(cmd, [
    ['devcluster doctor', 'one line per check; problems explained'],
    ['devcluster doctor -v', 'with details and the commands each check ran'],
    ['devcluster doctor KUBECONFIG_INVALID HOST_DISK_LOW', 'only these checks'],
    ['devcluster doctor --fix', 'show the fixes, ask, apply them, check again'],
    ['devcluster doctor -p dev -o json', 'a JSON report for the profile "dev"'],
    ['devcluster doctor --fix QEMU_NOT_INSTALLED', 'install QEMU with the package manager, after asking'],
    ['devcluster config set doctor.muted PROXY_NO_PROXY_INCOMPLETE', 'stop showing a warning'],
  ]);
}

async function doctor(ctx: CommandContext, ids: string[], opts: Record<string, unknown>): Promise<number> {
  const { loadDriverChecks } = await import('../doctor/driver-checks.ts');
  const { allChecks } = await import('../doctor/registry.ts');
  const { renderCheckList, checkListJson } = await import('../doctor/render.ts');
  const { inputError } = await import('../ui/errors.ts');
  await loadDriverChecks();
  const checks = allChecks();
  if (opts['list'] === true) {
    if (ctx.out.format === 'json') ctx.out.json(checkListJson(checks));
    else renderCheckList(ctx.out, checks);
    return 0;
  }
  const wanted = ids.map((id) => id.toUpperCase());
  const unknown = wanted.filter((id) => !checks.some((c) => c.id === id));
  if (unknown.length > 0) {
    throw inputError('USAGE_INVALID_ARGUMENT', `unknown check ID${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, {
      advice: `Valid IDs: ${checks.map((c) => c.id).join(', ')}. \`devcluster doctor --list\` says what each looks at.`,
    });
  }
  if (opts['yes'] === true && opts['fix'] !== true) {
    throw inputError('USAGE_INVALID_ARGUMENT', '--yes only has a meaning with --fix', { advice: 'Run `devcluster doctor --fix --yes`.' });
  }
  const { createDoctorContext } = await import('../doctor/context.ts');
  let dctx = await createDoctorContext({ home: ctx.home, profileFlag: ctx.profileFlag, driverFlag: opts['driver'] as string | undefined, env: ctx.env });
  if (dctx.cluster.running) {
    // The guest checks reach the VM over SSH with the profile's pinned key.
    const { doctorGuestAccessor } = await import('../cluster/doctor-guest.ts');
    const access = await doctorGuestAccessor({ home: ctx.home, profileFlag: dctx.profile, out: ctx.out, signal: ctx.signal, waitLock: false, command: ctx.command });
    dctx = { ...dctx, ...(access.guest === undefined ? {} : { guest: access.guest }), ...(access.problem === undefined ? {} : { guestProblem: access.problem }) };
  }
  try {
    return await report(ctx, dctx, wanted, opts);
  } finally {
    dctx.guest?.close?.();
  }
}

async function report(ctx: CommandContext, dctx: DoctorContext, wanted: string[], opts: Record<string, unknown>): Promise<number> {
  const { inputError } = await import('../ui/errors.ts');
  const { renderReport } = await import('../doctor/render.ts');
  const { runChecks } = await import('../doctor/runner.ts');
  const { buildReport, reportToJson, summarize } = await import('../doctor/report.ts');
  const muted = (dctx.config.settings['doctor.muted']?.value ?? []) as string[];
  const includeMuted = opts['include-muted'] === true || opts['includeMuted'] === true;
  const results = await runChecks(dctx, { ...(wanted.length > 0 ? { only: wanted } : {}), muted });
  let report = buildReport(dctx, results);
  ctx.log.write('info', `doctor: ${JSON.stringify(report.summary)}`);

  if (opts['fix'] === true && ctx.out.format !== 'json') {
    renderReport(ctx.out, report, { verbose: ctx.verbose, includeMuted });
    const { applyFixes } = await import('../doctor/fix.ts');
    const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
    const fixed = await applyFixes(dctx, report.checks, {
      yes: opts['yes'] === true,
      interactive,
      out: ctx.out,
      muted,
      confirm: async (message) => {
        const { confirm } = await import('@inquirer/prompts');
        return confirm({ message, default: false });
      },
    });
    report = { ...report, checks: fixed.results, summary: summarize(fixed.results) };
    ctx.log.write('info', `doctor --fix: ${fixed.outcomes.map((o) => `${o.id}=${o.status}`).join(' ')}`);
    return report.summary.exitCode;
  }
  if (opts['fix'] === true) {
    throw inputError('USAGE_INVALID_ARGUMENT', '--fix cannot be combined with --output json', { advice: 'Run `devcluster doctor --fix` in a terminal, or `--fix --yes` in a script.' });
  }
  if (ctx.out.format === 'json') ctx.out.json(reportToJson(report));
  else renderReport(ctx.out, report, { verbose: ctx.verbose, includeMuted });
  return report.summary.exitCode;
}

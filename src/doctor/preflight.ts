import { DevclusterError } from '../ui/errors.ts';
import { withDriver } from './context.ts';
import { loadDriverChecks } from './driver-checks.ts';
import { allChecks, isApplicable } from './registry.ts';
import { runChecks } from './runner.ts';
import type { CheckResult, DoctorContext, Fix } from './types.ts';

/** Advice text for an error: the fix's prose, then its commands for this platform. */
export function adviceFromFix(fix: Fix | undefined, platform: NodeJS.Platform): string | undefined {
  if (fix === undefined) return undefined;
  const shells = platform === 'win32' ? ['powershell', 'cmd'] : ['sh', 'bash', 'zsh', 'fish'];
  const commands = fix.commands.filter((c) => shells.includes(c.shell) || c.target === 'guest');
  const first = commands.filter((c, i) => i === 0 || c.file === undefined);
  const lines = first.map((c) => (c.file === undefined ? c.run : `${c.run}   (in ${c.file})`));
  return [fix.description, ...lines].join('\n    ');
}

/**
 * `start`'s preflight: the fatal checks that apply to its driver. Returns every
 * result (so warnings can be shown; muted ones have `muted: true`) and throws the first failure as a
 * DevclusterError whose ID and exit code are the check's.
 */
export async function runPreflight(ctx: DoctorContext, driverName: string): Promise<CheckResult[]> {
  await loadDriverChecks();
  const dctx = withDriver(ctx, driverName);
  const fatal = allChecks().filter((c) => c.fatal === true && isApplicable(c, dctx));
  const muted = (ctx.config.settings['doctor.muted']?.value ?? []) as string[];
  const results = await runChecks(dctx, { only: fatal.map((c) => c.id), checks: allChecks(), muted });
  const failed = results.find((r) => r.status === 'fail');
  if (failed !== undefined) {
    const advice = adviceFromFix(failed.fix, ctx.host.platform);
    throw new DevclusterError(failed.id, `${failed.title}: ${failed.summary}`, {
      ...(advice === undefined ? {} : { advice }),
      docs: failed.docs,
      details: { check: failed.id, ...(failed.details.length > 0 ? { checkDetails: failed.details } : {}) },
    });
  }
  return results;
}

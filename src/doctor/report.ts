import { packageVersion } from '../cli/version-info.ts';
import type { CheckResult, DoctorContext, DoctorReport, DoctorSummary } from './types.ts';

export const SCHEMA_VERSION = 1;

/** A result that counts as a problem: a failure, or a warning nobody muted. */
export function isProblem(r: CheckResult): boolean {
  return r.status === 'fail' || (r.status === 'warn' && !r.muted);
}

export function summarize(results: readonly CheckResult[]): DoctorSummary {
  const count = (pred: (r: CheckResult) => boolean) => results.filter(pred).length;
  const firstFail = results.find((r) => r.status === 'fail');
  return {
    pass: count((r) => r.status === 'pass'),
    warn: count((r) => r.status === 'warn' && !r.muted),
    fail: count((r) => r.status === 'fail'),
    skip: count((r) => r.status === 'skip'),
    error: count((r) => r.status === 'error'),
    muted: count((r) => r.muted),
    fixable: count((r) => isProblem(r) && r.fix?.apply !== undefined),
    exitCode: firstFail?.exitCode ?? 0,
  };
}

export function buildReport(ctx: DoctorContext, results: CheckResult[]): DoctorReport {
  const h = ctx.host;
  return {
    schemaVersion: SCHEMA_VERSION,
    devcluster: packageVersion(),
    generatedAt: new Date(ctx.now()).toISOString(),
    host: {
      platform: h.platform,
      arch: h.arch,
      release: h.release,
      osVersion: h.osVersion,
      cpus: h.cpus,
      totalMemoryMiB: h.totalMemoryMiB,
      freeMemoryMiB: h.freeMemoryMiB,
    },
    profile: ctx.profile,
    driver: { name: ctx.driver, source: ctx.driverSource },
    checks: results,
    summary: summarize(results),
  };
}

/** The report as JSON data: fixes lose their apply function and say whether they had one. */
export function reportToJson(report: DoctorReport): unknown {
  return {
    ...report,
    checks: report.checks.map((r) => {
      const { fix, ...rest } = r;
      if (fix === undefined) return rest;
      const { apply, applyDescription: _applyDescription, ...fixData } = fix;
      return {
        ...rest,
        fix: {
          description: fixData.description,
          commands: fixData.commands.map((c) => ({ shell: c.shell, run: c.run, elevated: c.elevated, target: c.target ?? 'host', ...(c.file === undefined ? {} : { file: c.file }) })),
          automatic: apply !== undefined,
          elevated: fixData.elevated === true,
          requires: fixData.requires ?? [],
          disruptive: fixData.disruptive === true,
        },
      };
    }),
  };
}

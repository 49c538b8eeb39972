import { run } from '../../src/host/exec.ts';
import type { Exec } from '../../src/host/process.ts';
import { PowerShellError, powershellExecutable, runPowerShellArray } from '../../src/host/powershell.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { classifyError } from './output.ts';
import './errors.ts';

/** What the driver needs from the machine: injected so tests run it over a PowerShell double on Linux. */
export interface HypervHost {
  platform: NodeJS.Platform;
  /** powershell.exe's path; resolved (System32 or Sysnative) when absent. */
  powershell?: string;
  exec?: Exec;
  /** Where scripts too long for a command line are written. */
  tempDir?: string;
}

export type Runner = (script: string, options?: { timeoutMs?: number; signal?: AbortSignal }) => Promise<unknown[]>;

const DOCTOR_FIX = 'Run `devcluster doctor --driver hyperv` for the fix.';

/** The operation a script names in its first line. */
export function opOf(script: string): string {
  return /^# devcluster-op: ([\w-]+)/.exec(script)?.[1] ?? 'script';
}

/**
 * Runs the driver's scripts, turning the failures every operation can meet
 * (no right, no module, a locked-down PowerShell) into the driver's own
 * errors with their fix; other failures stay PowerShellErrors for the
 * caller to match on their FullyQualifiedErrorId.
 */
export function createRunner(host: HypervHost): Runner {
  const exec = host.exec ?? run;
  return async (script, options = {}) => {
    const op = opOf(script);
    if (host.platform !== 'win32' && host.powershell === undefined) {
      // A Hyper-V profile reached from another OS (a copied DEVCLUSTER_HOME): say so instead of "powershell.exe not found".
      throw new DevclusterError('HYPERV_NOT_WINDOWS', `Hyper-V runs only on Windows; this host runs ${host.platform}, so ${op} cannot run here`, {
        advice: 'Manage this profile from the Windows host that created it.',
      });
    }
    try {
      return await runPowerShellArray(script, {
        exec,
        executable: host.powershell ?? powershellExecutable(),
        op,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(host.tempDir === undefined ? {} : { tempDir: host.tempDir }),
      });
    } catch (e) {
      if (!(e instanceof PowerShellError)) throw e;
      const kind = classifyError({ fullyQualifiedErrorId: e.failure.fullyQualifiedErrorId, exceptionType: e.failure.exceptionType, category: e.failure.category });
      const cause = `[${e.failure.fullyQualifiedErrorId}; ${e.failure.exceptionType}]`;
      if (kind === 'access-denied') {
        throw new DevclusterError('HYPERV_RIGHTS', `Hyper-V refused ${op}: this account may not do it ${cause}`, {
          advice: `Run from a terminal opened with "Run as administrator", or add your account to "Hyper-V Administrators" and sign in again (VMs only; switches and NAT need Administrator). ${DOCTOR_FIX}`,
          details: { op, ...e.failure },
        });
      }
      if (kind === 'command-not-found') {
        throw new DevclusterError('HYPERV_MODULE_MISSING', `a cmdlet ${op} needs is missing ${cause}: the Hyper-V (or NetNat/NetTCPIP) PowerShell module is not installed`, {
          advice: `Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V -All (as Administrator), then reboot. ${DOCTOR_FIX}`,
          details: { op, ...e.failure },
        });
      }
      if (kind === 'constrained-language') {
        throw new DevclusterError('HYPERV_RIGHTS', `PowerShell runs in Constrained Language Mode here, so ${op} cannot run ${cause}`, {
          advice: 'An AppLocker or WDAC policy restricts PowerShell on this machine; ask its administrator to allow devcluster\'s scripts, or use another driver.',
          details: { op, ...e.failure },
        });
      }
      throw e;
    }
  };
}

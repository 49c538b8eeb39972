import { records } from './output.ts';
import { script } from './ps.ts';

/**
 * What the current token may do with Hyper-V: switches, host addresses and
 * NAT need an elevated Administrator (S-1-5-32-544 enabled in the token, so
 * a UAC-filtered admin shell does not count); VMs need that or membership of
 * Hyper-V Administrators (S-1-5-32-578, effective only after signing in
 * again). Read with IsInRole, which checks the token as Windows does.
 */
export interface Rights {
  administrator: boolean;
  hypervAdministrators: boolean;
}

export const ADMINISTRATORS_SID = 'S-1-5-32-544';
export const HYPERV_ADMINISTRATORS_SID = 'S-1-5-32-578';

export function rightsScript(): string {
  return script('query-rights', [
    '$principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()',
    `[pscustomobject]@{ Administrator = $principal.IsInRole([Security.Principal.SecurityIdentifier]'${ADMINISTRATORS_SID}'); HypervAdministrators = $principal.IsInRole([Security.Principal.SecurityIdentifier]'${HYPERV_ADMINISTRATORS_SID}') }`,
  ]);
}

/** The rights from rightsScript()'s row; anything unreadable counts as not granted. */
export function parseRights(json: unknown): Rights {
  const row = records(json)[0] ?? {};
  const flag = (k: string) => row[k] === true || (typeof row[k] === 'string' && /^true$/i.test(row[k] as string));
  return { administrator: flag('Administrator'), hypervAdministrators: flag('HypervAdministrators') };
}

/** Runs rightsScript() with the caller's runner (the driver's, or the doctor's). */
export async function queryRights(run: (script: string) => Promise<unknown>): Promise<Rights> {
  return parseRights(await run(rightsScript()));
}

/** The right an operation lacks, or undefined: `network` needs Administrator, the rest either group. */
export function missingRight(rights: Rights, needs: 'administrator' | 'vm'): 'administrator' | 'hyperv-administrators' | undefined {
  if (rights.administrator) return undefined;
  if (needs === 'administrator') return 'administrator';
  return rights.hypervAdministrators ? undefined : 'hyperv-administrators';
}

/** Whether the Hyper-V module and its management service are there, without needing any right. */
export function hypervPresenceScript(): string {
  return script('hyperv-presence', [
    "$module = @(Microsoft.PowerShell.Core\\Get-Module -ListAvailable -Name 'Hyper-V').Count -gt 0",
    "$service = @(Microsoft.PowerShell.Management\\Get-Service -ErrorAction SilentlyContinue | Microsoft.PowerShell.Core\\Where-Object { $_.Name -eq 'vmms' }) | Microsoft.PowerShell.Utility\\Select-Object -First 1",
    "[pscustomobject]@{ Module = $module; VmmsStatus = [string]$service.Status; VmmsStartType = [string]$service.StartType }",
  ]);
}

export interface HypervPresence {
  module: boolean;
  /** Running, Stopped, ... or '' when the service does not exist. */
  vmmsStatus: string;
}

export function parsePresence(json: unknown): HypervPresence {
  const row = records(json)[0] ?? {};
  return { module: row['Module'] === true, vmmsStatus: typeof row['VmmsStatus'] === 'string' ? (row['VmmsStatus'] as string) : '' };
}

import { arrayScript, psString } from '../../src/host/powershell.ts';

/**
 * Shared pieces of the driver's scripts. Every cmdlet is written with its
 * module (VMware PowerCLI defines Get-VM, Start-VM, ... too, and a name
 * without a module runs whichever was imported last), and every value that
 * came from the user or the file system enters as psString(), never as text.
 */
export const q = psString;

export const WHERE = 'Microsoft.PowerShell.Core\\Where-Object';
export const FOREACH = 'Microsoft.PowerShell.Core\\ForEach-Object';
export const SELECT = 'Microsoft.PowerShell.Utility\\Select-Object';
export const SORT = 'Microsoft.PowerShell.Utility\\Sort-Object';
export const SLEEP = 'Microsoft.PowerShell.Utility\\Start-Sleep';

/** A driver script: the operation's header, the prelude and the error wrapper around `lines`. */
export function script(op: string, lines: readonly string[]): string {
  return arrayScript(lines.map((l) => `    ${l}`).join('\n'), { op });
}

/** A GUID literal that cannot carry anything else: the text is checked before it is quoted. */
export function guid(id: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw new Error(`not a GUID: ${JSON.stringify(id)}`);
  return `[guid]${q(id)}`;
}

/**
 * `$vm` = the VM with this Id, or $null. Listing all VMs and filtering
 * (instead of Get-VM -Id) makes "no such VM" an empty result while an
 * access-denied error still stops the script.
 */
export function findVmById(id: string): string {
  return `$vm = @(Hyper-V\\Get-VM | ${WHERE} { $_.Id -eq ${guid(id)} }) | ${SELECT} -First 1`;
}

/** The VM's facts as the output parsers read them (State as its number). */
export const VM_ROW = "[pscustomobject]@{ Name = $vm.Name; Id = [string]$vm.Id; State = [int]$vm.State; Status = [string]$vm.Status; Generation = [int]$vm.Generation; ProcessorCount = [int]$vm.ProcessorCount; MemoryStartup = [long]$vm.MemoryStartup; Path = [string]$vm.Path; UptimeSeconds = [long]$vm.Uptime.TotalSeconds }";

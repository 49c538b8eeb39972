import { isIpv4 } from '../../src/host/ipv4.ts';
import type { VmwareProduct } from './host.ts';

/**
 * vmrun's command lines and the text it prints. Every call names the
 * product with -T (without it vmrun guesses, and Player's VIX answers
 * "The specified version was not found"), and every word is its own
 * argument: `stop <vmx> hard`, never "hard nogui" in one.
 */

export const vmrunArgs = {
  list: (t: VmwareProduct) => ['-T', t, 'list'],
  start: (t: VmwareProduct, vmx: string) => ['-T', t, 'start', vmx, 'nogui'],
  stop: (t: VmwareProduct, vmx: string, how: 'soft' | 'hard') => ['-T', t, 'stop', vmx, how],
  getGuestIPAddress: (t: VmwareProduct, vmx: string) => ['-T', t, 'getGuestIPAddress', vmx, '-wait'],
  deleteVM: (t: VmwareProduct, vmx: string) => ['-T', t, 'deleteVM', vmx],
} as const;

/**
 * `vmrun list`:
 *
 *     Total running VMs: 2
 *     C:\Users\me\.devcluster\profiles\dev\vm\dev.vmx
 *     /home/me/vms/other/other.vmx
 */
export function parseVmrunList(text: string): { count: number | undefined; vmx: string[] } {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const header = /^Total running VMs:\s*(\d+)$/i.exec(lines[0] ?? '');
  return { count: header === null ? undefined : Number(header[1]), vmx: lines.filter((l) => !/^Total running VMs:/i.test(l)) };
}

/**
 * Whether two .vmx paths name the same file as vmrun prints them: Windows
 * and macOS file systems ignore case (and Windows accepts both slashes).
 */
export function sameVmxPath(a: string, b: string, platform: NodeJS.Platform): boolean {
  if (platform === 'win32') return a.replaceAll('/', '\\').toLowerCase() === b.replaceAll('/', '\\').toLowerCase();
  if (platform === 'darwin') return a.normalize('NFC').toLowerCase() === b.normalize('NFC').toLowerCase();
  return a === b;
}

/** vmrun prints its failures on stdout as "Error: <text>"; the last such line, or the output's last line. */
export function vmrunError(stdout: string, stderr: string): string {
  const lines = `${stdout}\n${stderr}`.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  return [...lines].reverse().find((l) => l.startsWith('Error:')) ?? lines.at(-1) ?? '';
}

/**
 * `vmrun getGuestIPAddress <vmx> -wait`: the address alone on a line. An
 * address ending in .1 is a bridge inside the guest (cni0, docker0, virbr0)
 * that VMware Tools reported instead of the NIC (open-vm-tools#93), never
 * the guest's address on vmnet8, where .1 is the host.
 */
export function parseGuestIp(stdout: string): string | undefined {
  const ip = stdout.trim().split(/\r?\n/).pop()?.trim() ?? '';
  return isIpv4(ip) && !ip.endsWith('.1') && ip !== '0.0.0.0' && !ip.startsWith('169.254.') && !ip.startsWith('127.') ? ip : undefined;
}

/** The version from the usage text vmrun prints when run without arguments: "vmrun version 1.17.0 build-24319021". */
export function parseVmrunVersion(text: string): { version: string; build: string | undefined } | undefined {
  const m = /vmrun version (\d+\.\d+\.\d+)(?: build-(\d+))?/i.exec(text);
  return m === null ? undefined : { version: m[1] as string, build: m[2] };
}

/**
 * What -T ws answers on a host with only Player (or an older VIX): the
 * product type is not installed. "Unable to connect to host" alone is not
 * that: Workstation Pro prints it too, with another reason on the next
 * line (GNS3 issue 1008: "The operation is not supported for the specified
 * parameters"), so it must not send a Pro user off to install Pro.
 */
export function isProductMissing(text: string): boolean {
  return /The specified version was not found|VIX_SERVICEPROVIDER_VMWARE_WORKSTATION was specified, but not installed/i.test(text);
}

/** Tools not (yet) running in the guest: the address must come from the leases instead. */
export function isToolsMissing(text: string): boolean {
  return /VMware Tools are not running/i.test(text);
}

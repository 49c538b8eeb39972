import type { DriverDescriptor } from './driver.ts';
import { HYPERKIT_SETTINGS } from './hyperkit/settings.ts';
import { HYPERV_SETTINGS } from './hyperv/settings.ts';
import { QEMU_SETTINGS } from './qemu/settings.ts';
import { VMWARE_SETTINGS } from './vmware/settings.ts';

export type { DriverDescriptor } from './driver.ts';

/**
 * The drivers devcluster knows by name: canonical names, aliases, the host
 * platforms each runs on, the order of preference when none is chosen, and
 * each driver's own settings. Kept free of driver code so that validating a
 * name or a setting loads nothing heavy; drivers/index.ts says which of these
 * this build ships.
 */
export const DRIVER_DESCRIPTORS: readonly DriverDescriptor[] = [
  { name: 'hyperv', displayName: 'Hyper-V', aliases: ['hyper-v'], platforms: ['win32'], priority: { win32: 100 }, settings: HYPERV_SETTINGS },
  { name: 'hyperkit', displayName: 'HyperKit', aliases: [], platforms: ['darwin'], priority: { darwin: 10 }, settings: HYPERKIT_SETTINGS, legacy: 'HyperKit is unmaintained and runs only on Intel Macs; the QEMU driver (HVF) is recommended on macOS' },
  { name: 'vmware', displayName: 'VMware Workstation / Fusion', aliases: ['vmware-workstation', 'vmware-fusion'], platforms: ['win32', 'linux', 'darwin'], priority: { win32: 60, linux: 50, darwin: 70 }, settings: VMWARE_SETTINGS },
  { name: 'virtualbox', displayName: 'VirtualBox', aliases: ['vbox'], platforms: ['win32', 'linux', 'darwin'], priority: { win32: 50, linux: 40, darwin: 60 }, settings: [] },
  { name: 'qemu', displayName: 'QEMU', aliases: ['qemu2', 'kvm'], platforms: ['linux', 'darwin', 'win32'], priority: { linux: 100, darwin: 90, win32: 40 }, settings: QEMU_SETTINGS },
];

export function findDriver(nameOrAlias: string): DriverDescriptor | undefined {
  const n = nameOrAlias.trim().toLowerCase();
  return DRIVER_DESCRIPTORS.find((d) => d.name === n || d.aliases.includes(n));
}

export function driverNamesForHelp(): string {
  return DRIVER_DESCRIPTORS.map((d) => (d.aliases.length > 0 ? `${d.name} (${d.aliases.join(', ')})` : d.name)).join(', ');
}

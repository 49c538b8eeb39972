/**
 * The drivers devcluster knows by name: canonical names, aliases, the host
 * platforms each runs on, and the order of preference when none is chosen.
 * Kept free of imports so that validating a driver name loads nothing heavy.
 */
export interface DriverDescriptor {
  readonly name: string;
  readonly displayName: string;
  readonly aliases: readonly string[];
  readonly platforms: readonly NodeJS.Platform[];
  /** Higher is preferred when several are available on a host. */
  readonly priority: Readonly<Partial<Record<NodeJS.Platform, number>>>;
}

export const DRIVER_DESCRIPTORS: readonly DriverDescriptor[] = [
  { name: 'hyperv', displayName: 'Hyper-V', aliases: ['hyper-v'], platforms: ['win32'], priority: { win32: 100 } },
  { name: 'hyperkit', displayName: 'HyperKit', aliases: [], platforms: ['darwin'], priority: { darwin: 80 } },
  { name: 'vmware', displayName: 'VMware Workstation / Fusion', aliases: ['vmware-workstation', 'vmware-fusion'], platforms: ['win32', 'linux', 'darwin'], priority: { win32: 60, linux: 50, darwin: 70 } },
  { name: 'virtualbox', displayName: 'VirtualBox', aliases: ['vbox'], platforms: ['win32', 'linux', 'darwin'], priority: { win32: 50, linux: 40, darwin: 60 } },
  { name: 'qemu', displayName: 'QEMU', aliases: ['qemu2', 'kvm'], platforms: ['linux', 'darwin', 'win32'], priority: { linux: 100, darwin: 90, win32: 40 } },
];

export function findDriver(nameOrAlias: string): DriverDescriptor | undefined {
  const n = nameOrAlias.trim().toLowerCase();
  return DRIVER_DESCRIPTORS.find((d) => d.name === n || d.aliases.includes(n));
}

export function driverNamesForHelp(): string {
  return DRIVER_DESCRIPTORS.map((d) => (d.aliases.length > 0 ? `${d.name} (${d.aliases.join(', ')})` : d.name)).join(', ');
}

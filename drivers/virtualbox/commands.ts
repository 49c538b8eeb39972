import type { VBoxVersion } from './parse.ts';

/**
 * The VBoxManage argument lists the driver runs, built as pure functions so
 * the contract tests can compare them, per VirtualBox version and host OS,
 * without VirtualBox. Every value is one argv element: a Windows adapter
 * name with spaces or a home folder with quotes passes through unchanged.
 */

export interface VBoxTarget {
  platform: NodeJS.Platform;
  arch: string;
  version: VBoxVersion;
}

/** VirtualBox 7 on macOS dropped the host-only kernel extension: only vmnet-backed host-only networks work there. */
export function usesHostOnlyNet(t: VBoxTarget): boolean {
  return t.platform === 'darwin' && t.version.major >= 7;
}

/** Apple silicon runs only Arm guests, on VirtualBox 7.1+, with an Arm chipset, UEFI and its own option spellings. */
export function armGuest(t: VBoxTarget): boolean {
  return t.platform === 'darwin' && t.arch === 'arm64';
}

export interface HostOnlyAttachment {
  kind: 'hostonlyif' | 'hostonlynet';
  name: string;
}

export interface NatForward {
  guestPort: number;
  hostPort: number;
}

export interface VmLayout {
  vm: string;
  /** createvm --basefolder: VirtualBox makes <baseFolder>/<vm>/ with the .vbox file and Logs/. */
  baseFolder: string;
  cpus: number;
  memoryMiB: number;
  /** NIC1 (NAT) and NIC2 (host-only), 12 hex digits each. */
  macs: readonly [string, string];
  serialLog: string;
  forwards: readonly NatForward[];
  hostOnly: HostOnlyAttachment;
}

export const CONTROLLER = 'SATA';

/** NAT rule names come from the guest port only: request names are free text, and a comma would split the rule. */
export function forwardRuleName(guestPort: number): string {
  return `guest${guestPort}`;
}

export function forwardRule(f: NatForward): string {
  return `${forwardRuleName(f.guestPort)},tcp,127.0.0.1,${f.hostPort},,${f.guestPort}`;
}

export function createVmArgs(t: VBoxTarget, l: VmLayout): string[] {
  return ['createvm', '--name', l.vm, '--basefolder', l.baseFolder, '--ostype', armGuest(t) ? 'Linux_arm64' : 'Linux_64', '--register'];
}

/** Firmware, CPUs, memory, clock, boot order, serial console, both NICs and the forwards, in one modifyvm. */
export function modifyVmArgs(t: VBoxTarget, l: VmLayout): string[] {
  const arm = armGuest(t);
  const machine = arm
    ? ['--chipset', 'armv8virtual', '--firmware', 'efi', '--graphicscontroller', 'qemuramfb', '--cpus', String(l.cpus), '--memory', String(l.memoryMiB), '--acpi', 'on', '--ioapic', 'on', '--rtc-use-utc', 'on', '--paravirt-provider', 'default']
    : ['--firmware', 'bios', '--cpus', String(l.cpus), '--memory', String(l.memoryMiB), '--acpi', 'on', '--ioapic', 'on', '--rtcuseutc', 'on', '--paravirtprovider', 'kvm', '--hwvirtex', 'on', '--nestedpaging', 'on', '--pae', 'on', '--largepages', 'on', '--vtxvpid', 'on', '--biosbootmenu', 'disabled'];
  const boot = ['--boot1', 'disk', '--boot2', 'dvd', '--boot3', 'none', '--boot4', 'none'];
  // The guest's console (ttyS0) goes to a file in the profile's logs: what crash reports and the SSH wait's hints read.
  const serial = ['--uart1', '0x3F8', '4', '--uartmode1', 'file', l.serialLog];
  const nat = ['--nic1', 'nat', '--nictype1', 'virtio', '--cableconnected1', 'on', '--macaddress1', l.macs[0], '--natdnshostresolver1', 'on'];
  // VirtualBox 7 NAT no longer lets the guest reach the host's loopback unless asked; 6.1 rejects the option.
  const loopback = t.version.major >= 7 ? ['--natlocalhostreachable1', 'on'] : [];
  const forwards = l.forwards.flatMap((f) => ['--natpf1', forwardRule(f)]);
  return ['modifyvm', l.vm, ...machine, ...boot, ...serial, ...nat, ...loopback, ...forwards, ...hostOnlyNicArgs(l.hostOnly, l.macs[1])];
}

export function hostOnlyNicArgs(h: HostOnlyAttachment, mac: string): string[] {
  const attach = h.kind === 'hostonlynet' ? ['--nic2', 'hostonlynet', '--host-only-net2', h.name] : ['--nic2', 'hostonly', '--hostonlyadapter2', h.name];
  return [...attach, '--nictype2', 'virtio', '--cableconnected2', 'on', '--macaddress2', mac, '--nicpromisc2', 'deny'];
}

export function storageControllerArgs(vm: string, ports: number): string[] {
  return ['storagectl', vm, '--name', CONTROLLER, '--add', 'sata', '--controller', 'IntelAhci', '--portcount', String(ports), '--hostiocache', 'on', '--bootable', 'on'];
}

/** The VM's disk: a differencing child of the cached base, in the profile's folder. The base is opened (registered) read-only as its parent. */
export function createDiffDiskArgs(base: string, disk: string): string[] {
  return ['createmedium', 'disk', '--filename', disk, '--diffparent', base, '--format', 'VDI'];
}

export function resizeDiskArgs(disk: string, mib: number): string[] {
  return ['modifymedium', 'disk', disk, '--resize', String(mib)];
}

export function attachDiskArgs(vm: string, disk: string): string[] {
  return ['storageattach', vm, '--storagectl', CONTROLLER, '--port', '0', '--device', '0', '--type', 'hdd', '--medium', disk];
}

export function attachDvdArgs(vm: string, port: number, iso: string): string[] {
  return ['storageattach', vm, '--storagectl', CONTROLLER, '--port', String(port), '--device', '0', '--type', 'dvddrive', '--medium', iso];
}

export function detachArgs(vm: string, port: number): string[] {
  return ['storageattach', vm, '--storagectl', CONTROLLER, '--port', String(port), '--device', '0', '--medium', 'none'];
}

/** Every step of create after the host-only network exists, in order. */
export function createSequence(t: VBoxTarget, l: VmLayout, media: { base: string; disk: string; resizeMiB?: number; isos: readonly string[] }): string[][] {
  return [
    createVmArgs(t, l),
    modifyVmArgs(t, l),
    storageControllerArgs(l.vm, 1 + media.isos.length),
    createDiffDiskArgs(media.base, media.disk),
    ...(media.resizeMiB === undefined ? [] : [resizeDiskArgs(media.disk, media.resizeMiB)]),
    attachDiskArgs(l.vm, media.disk),
    ...media.isos.map((iso, i) => attachDvdArgs(l.vm, 1 + i, iso)),
  ];
}

/** Forwards whose host port changed since create: the old rule goes, the new one comes (the VM is powered off). */
export function reforwardArgs(vm: string, changed: readonly NatForward[]): string[] | undefined {
  if (changed.length === 0) return undefined;
  return ['modifyvm', vm, ...changed.flatMap((f) => ['--natpf1', 'delete', forwardRuleName(f.guestPort), '--natpf1', forwardRule(f)])];
}

export function startArgs(vm: string): string[] {
  return ['startvm', vm, '--type', 'headless'];
}

export function showVmInfoArgs(vm: string): string[] {
  return ['showvminfo', vm, '--machinereadable'];
}

export function controlArgs(vm: string, action: 'acpipowerbutton' | 'poweroff' | 'resume'): string[] {
  return ['controlvm', vm, action];
}

/** A saved VM's media cannot be detached (VBOX_E_INVALID_VM_STATE): delete throws its saved state away first. */
export function discardStateArgs(vm: string): string[] {
  return ['discardstate', vm];
}

export function unregisterArgs(vm: string): string[] {
  return ['unregistervm', vm, '--delete'];
}

export function closeDiskArgs(disk: string, deleteFile: boolean): string[] {
  return ['closemedium', 'disk', disk, ...(deleteFile ? ['--delete'] : [])];
}

export function closeDvdArgs(iso: string): string[] {
  return ['closemedium', 'dvd', iso];
}

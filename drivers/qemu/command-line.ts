import { qmpAddressArg } from './qmp.ts';
import type { MonitorAddress } from './monitor-address.ts';

export type Accel = 'kvm' | 'hvf' | 'whpx' | 'tcg';

export type QemuNetdev =
  | { kind: 'user'; bindAddress: string; forwards: ReadonlyArray<{ hostPort: number; guestPort: number }> }
  | { kind: 'tap'; ifname: string };

export interface QemuLaunch {
  name: string;
  arch: 'x86_64' | 'aarch64';
  accel: Accel;
  /** The CPU model the accelerator probe verified; otherwise host (hardware) or max (TCG). */
  cpuModel?: string;
  cpus: number;
  memoryMiB: number;
  disk: string;
  seedIso: string;
  /** Read-only ISOs after the seed; absent in VMs recorded before there were any. */
  dataIsos?: readonly string[];
  kernel?: string;
  initrd?: string;
  append?: string;
  /** UEFI firmware for images that boot from their own bootloader on aarch64. */
  firmware?: string;
  mac: string;
  netdev: QemuNetdev;
  qmp: MonitorAddress;
  pidFile: string;
  serialLog: string;
}

/**
 * The QEMU command line for one VM, as an argument array. -nodefaults keeps
 * QEMU from adding devices we did not ask for, so the guest sees the same
 * hardware on every host.
 */
export function buildQemuArgs(l: QemuLaunch): string[] {
  const args: string[] = ['-name', l.name, '-nodefaults', '-display', 'none'];
  if (l.arch === 'x86_64') {
    args.push('-machine', 'q35');
  } else {
    args.push('-machine', 'virt,highmem=on');
  }
  args.push('-accel', l.accel === 'tcg' ? 'tcg,thread=multi' : l.accel);
  args.push('-cpu', l.cpuModel ?? (l.accel === 'tcg' ? 'max' : 'host'));
  args.push('-smp', String(l.cpus), '-m', `${l.memoryMiB}M`);
  if (l.firmware !== undefined) args.push('-bios', l.firmware);
  if (l.kernel !== undefined) {
    args.push('-kernel', l.kernel);
    if (l.initrd !== undefined) args.push('-initrd', l.initrd);
    if (l.append !== undefined) args.push('-append', l.append);
  }
  args.push('-drive', `if=virtio,file=${escapeOption(l.disk)},format=qcow2,cache=writeback,discard=unmap`);
  // ISOs as read-only virtio disks: no CD-ROM controller to emulate, and the guest reads them at disk speed.
  for (const iso of [l.seedIso, ...(l.dataIsos ?? [])]) args.push('-drive', `if=virtio,file=${escapeOption(iso)},format=raw,readonly=on,media=disk`);
  // Entropy for the guest: without it sshd and TLS stall at boot under emulation.
  args.push('-device', 'virtio-rng-pci');
  if (l.netdev.kind === 'user') {
    const n = l.netdev;
    const hostfwd = n.forwards.map((f) => `,hostfwd=tcp:${n.bindAddress}:${f.hostPort}-:${f.guestPort}`).join('');
    args.push('-netdev', `user,id=net0${hostfwd}`);
  } else {
    args.push('-netdev', `tap,id=net0,ifname=${l.netdev.ifname},script=no,downscript=no`);
  }
  args.push('-device', `virtio-net-pci,netdev=net0,mac=${l.mac}`);
  args.push('-chardev', `file,id=serial0,path=${escapeOption(l.serialLog)},append=on`, '-serial', 'chardev:serial0');
  args.push('-qmp', qmpAddressArg(l.qmp));
  args.push('-pidfile', l.pidFile);
  return args;
}

/** QEMU option values separate fields with commas; a literal comma is doubled. */
export function escapeOption(value: string): string {
  return value.replace(/,/g, ',,');
}

/** A stable, locally administered MAC per profile (QEMU's 52:54:00 prefix). */
export function macForProfile(profile: string, hash: (s: string) => Buffer): string {
  const h = hash(`devcluster:${profile}`);
  return ['52', '54', '00', ...[0, 1, 2].map((i) => (h[i] ?? 0).toString(16).padStart(2, '0'))].join(':');
}

import { findQemuProgram } from '../../src/host/qemu-dirs.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import './errors.ts';

export function qemuArch(nodeArch: string = process.arch): 'x86_64' | 'aarch64' {
  return nodeArch === 'arm64' ? 'aarch64' : 'x86_64';
}

export interface QemuBinaries {
  system: string;
  img: string;
}

export async function findQemu(): Promise<QemuBinaries | undefined> {
  const system = await findQemuProgram(`qemu-system-${qemuArch()}`);
  const img = await findQemuProgram('qemu-img');
  return system === undefined || img === undefined ? undefined : { system, img };
}

const INSTALL_ADVICE: Readonly<Partial<Record<NodeJS.Platform, string>>> = {
  linux: 'Install QEMU: `sudo apt-get install qemu-system-x86 qemu-utils` (Debian/Ubuntu) or `sudo dnf install qemu-kvm qemu-img` (Fedora).',
  darwin: 'Install QEMU: `brew install qemu`.',
  win32: 'Install QEMU for Windows (qemu.org) into C:\\Program Files\\qemu, or add its folder to PATH.',
};

export async function requireQemu(): Promise<QemuBinaries> {
  const found = await findQemu();
  if (found === undefined) {
    throw new DevclusterError('QEMU_NOT_FOUND', `qemu-system-${qemuArch()} and qemu-img are needed and were not found`, {
      advice: INSTALL_ADVICE[process.platform] ?? 'Install QEMU and put it on PATH.',
    });
  }
  return found;
}

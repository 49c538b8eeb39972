import { findOnPath } from '../../src/host/path-search.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import './errors.ts';

/** Where QEMU lives when it is not on PATH: Homebrew and the Windows installer's default. */
export const QEMU_EXTRA_DIRS: Readonly<Partial<Record<NodeJS.Platform, string[]>>> = {
  darwin: ['/opt/homebrew/bin', '/usr/local/bin'],
  win32: ['C:\\Program Files\\qemu'],
};

export function qemuArch(nodeArch: string = process.arch): 'x86_64' | 'aarch64' {
  return nodeArch === 'arm64' ? 'aarch64' : 'x86_64';
}

async function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  return findOnPath(name, { env, extraDirs: QEMU_EXTRA_DIRS[process.platform] ?? [] });
}

export interface QemuBinaries {
  system: string;
  img: string;
}

export async function findQemu(): Promise<QemuBinaries | undefined> {
  const system = await findExecutable(`qemu-system-${qemuArch()}`);
  const img = await findExecutable('qemu-img');
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

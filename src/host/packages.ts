import type { LinuxFamily } from './os-release.ts';

/** The package managers devcluster can install host tools with. */
export type PackageManager = 'apt-get' | 'dnf' | 'pacman' | 'zypper' | 'brew';

/** What runs one step of an installation: an argv, and whether it needs root. */
export interface InstallStep {
  argv: readonly string[];
  elevated: boolean;
}

const FAMILY_MANAGER: Readonly<Record<LinuxFamily, PackageManager>> = {
  debian: 'apt-get',
  fedora: 'dnf',
  arch: 'pacman',
  suse: 'zypper',
};

/** The package manager of a host: Homebrew on macOS, the family's on Linux; undefined elsewhere. */
export function packageManagerFor(platform: NodeJS.Platform, family: LinuxFamily | undefined): PackageManager | undefined {
  if (platform === 'darwin') return 'brew';
  if (platform === 'linux' && family !== undefined) return FAMILY_MANAGER[family];
  return undefined;
}

/**
 * The non-interactive commands that install `packages`; the user has
 * already agreed, so no second prompt. apt refreshes its lists first
 * because a fresh install (or a container image) often has none, and then
 * every install fails with "Unable to locate package". Homebrew refuses to
 * run as root, so its step is never elevated.
 */
export function installSteps(manager: PackageManager, packages: readonly string[]): InstallStep[] {
  if (packages.length === 0) return [];
  switch (manager) {
    case 'apt-get':
      return [
        { argv: ['apt-get', 'update'], elevated: true },
        { argv: ['apt-get', 'install', '-y', ...packages], elevated: true },
      ];
    case 'dnf':
      return [{ argv: ['dnf', 'install', '-y', ...packages], elevated: true }];
    case 'pacman':
      return [{ argv: ['pacman', '-S', '--needed', '--noconfirm', ...packages], elevated: true }];
    case 'zypper':
      return [{ argv: ['zypper', '--non-interactive', 'install', ...packages], elevated: true }];
    case 'brew':
      return [{ argv: ['brew', 'install', ...packages], elevated: false }];
  }
}

/** A step as a user types it in sh: `sudo` in front when it needs root (arguments are plain package names). */
export function stepCommandLine(step: InstallStep): string {
  return `${step.elevated ? 'sudo ' : ''}${step.argv.join(' ')}`;
}

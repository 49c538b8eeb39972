import { access, constants } from 'node:fs/promises';
import { DHCPD_LEASES_PATH } from '../../src/host/dhcpd-leases.ts';
import { findOnPath } from '../../src/host/path-search.ts';

/**
 * What the HyperKit driver touches on the Mac besides its profile: sudo,
 * bootpd's lease file, the CPU, and where hyperkit is installed. The driver
 * takes them as one value so its tests run it on Linux against doubles.
 */
export interface HyperkitHost {
  sudo: string;
  kill: string;
  leasesFile: string;
  arch: string;
  /** Searched after PATH, in order. */
  installDirs: readonly string[];
}

export const MACOS_HOST: HyperkitHost = {
  sudo: '/usr/bin/sudo',
  kill: '/bin/kill',
  leasesFile: DHCPD_LEASES_PATH,
  arch: process.arch,
  // Homebrew on Intel, then the copy Docker Desktop shipped before it moved to its own VM.
  installDirs: ['/usr/local/bin', '/Applications/Docker.app/Contents/Resources/bin', '/Applications/Docker.app/Contents/MacOS'],
};

/** HyperKit's names: its own, and Docker Desktop's renamed copy. */
export const HYPERKIT_PROGRAM = /^(hyperkit|com\.docker\.hyperkit)$/;

/** The hyperkit to run: the hyperkit-path setting when it is a path, else the first found on PATH or in the install folders. */
export async function findHyperkit(setting: string, env: NodeJS.ProcessEnv, host: HyperkitHost): Promise<string | undefined> {
  if (setting !== 'auto') return (await access(setting, constants.X_OK).then(() => true, () => false)) ? setting : undefined;
  for (const name of ['hyperkit', 'com.docker.hyperkit']) {
    const found = await findOnPath(name, { env, platform: 'darwin', extraDirs: host.installDirs });
    if (found !== undefined) return found;
  }
  return undefined;
}

/** "hyperkit: v0.20210107-2-g2f061e" -> 20210107, the date that orders HyperKit's releases. */
export function parseHyperkitVersion(text: string): number | undefined {
  const m = /hyperkit:\s*v?0\.(\d{8})/.exec(text);
  return m === null ? undefined : Number(m[1]);
}

/** The oldest HyperKit whose vmnet and kexec options the driver uses (what minikube also required). */
export const MIN_HYPERKIT_VERSION = 20190201;

/** The sudoers line that lets `user` run this hyperkit and stop it without a password. */
export function sudoersLine(user: string, hyperkit: string, host: HyperkitHost): string {
  return `${user} ALL=(root) NOPASSWD: ${hyperkit}, ${host.kill} -TERM *, ${host.kill} -KILL *`;
}

/** `sysctl sysctl.proc_translated`: "sysctl.proc_translated: 1" for a process Rosetta translates; an unknown name on Intel Macs. */
export function parseTranslated(text: string): boolean | undefined {
  const m = /sysctl\.proc_translated:\s*([01])/.exec(text);
  return m === null ? undefined : m[1] === '1';
}

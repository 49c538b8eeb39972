import { access, constants, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DHCPD_LEASES_PATH } from '../../src/host/dhcpd-leases.ts';
import { findOnPath, pathDirs } from '../../src/host/path-search.ts';

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
  // A path with a space or comma could not be recognized in `ps` or passed to hyperkit: such PATH entries are passed by.
  const usable = (dirs: readonly string[]) => dirs.filter((d) => !/[,\s]/.test(d));
  for (const name of ['hyperkit', 'com.docker.hyperkit']) {
    const found = await findOnPath(name, { env: { PATH: usable(pathDirs(env, 'darwin')).join(':') }, platform: 'darwin', extraDirs: usable(host.installDirs) });
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

/** Where `doctor` suggests a root-owned copy of hyperkit: every directory above it is root's. */
export const ROOT_OWNED_HYPERKIT = '/opt/devcluster/bin/hyperkit';

/**
 * Why a program run as root without a password would let a non-root process
 * become root: the file, or a directory on its path (through symlinks too),
 * is not root's or is writable by others. A sticky directory (/tmp) lets no
 * one replace another user's entries, so it is not a problem.
 */
export async function rootOwnershipProblems(path: string): Promise<string[]> {
  const problems: string[] = [];
  const check = async (p: string, isFile: boolean): Promise<void> => {
    const st = await stat(p).catch(() => undefined);
    if (st === undefined) return;
    if (st.uid !== 0) problems.push(`${p} belongs to uid ${st.uid}, not root`);
    else if ((st.mode & 0o022) !== 0 && (isFile || (st.mode & 0o1000) === 0)) problems.push(`${p} is writable by its group or by everyone`);
  };
  const chain = async (file: string): Promise<void> => {
    await check(file, true);
    for (let dir = dirname(file); ; dir = dirname(dir)) {
      await check(dir, false);
      if (dirname(dir) === dir) break;
    }
  };
  await chain(path);
  const real = await realpath(path).catch(() => path);
  if (real !== path) await chain(real);
  return [...new Set(problems)];
}

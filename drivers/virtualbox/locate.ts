import { access, constants } from 'node:fs/promises';
import { posix, win32 } from 'node:path';
import type { run } from '../../src/host/exec.ts';
import { findOnPath } from '../../src/host/path-search.ts';
import { readRegistryValue } from '../../src/host/windows-registry.ts';

/** Where VBoxManage was found, for doctor and errors ("VBOX_MSI_INSTALL_PATH"). */
export type VBoxManageSource = 'VBOX_INSTALL_PATH' | 'VBOX_MSI_INSTALL_PATH' | 'default folder' | 'registry InstallDir' | 'PATH';

export interface FoundVBoxManage {
  path: string;
  source: VBoxManageSource;
  /** Every place looked at, in order, for the error when none has it. */
  tried: string[];
}

export interface LocateHost {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** Whether a file can be run (exists on Windows). */
  isProgram(path: string): Promise<boolean>;
  /** The registry's HKLM\SOFTWARE\Oracle\VirtualBox InstallDir, or undefined when there is none. */
  registryInstallDir(): Promise<string | undefined>;
}

export function programName(platform: NodeJS.Platform): string {
  return platform === 'win32' ? 'VBoxManage.exe' : 'VBoxManage';
}

/** The folders the installers use (the Windows MSI, the macOS package, Oracle's Linux .run and the distributions' packages). */
export function defaultFolders(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string[] {
  if (platform === 'win32') {
    const roots = [env['ProgramFiles'], env['ProgramW6432'], 'C:\\Program Files', env['ProgramFiles(x86)']].filter((r): r is string => r !== undefined && r !== '');
    return [...new Set(roots.map((r) => win32.join(r, 'Oracle', 'VirtualBox')))];
  }
  if (platform === 'darwin') return ['/Applications/VirtualBox.app/Contents/MacOS', '/usr/local/bin'];
  return ['/usr/bin', '/usr/local/bin', '/opt/VirtualBox', '/usr/lib/virtualbox'];
}

/**
 * VBoxManage, looked for where the installers put it, in order: the
 * VBOX_INSTALL_PATH and VBOX_MSI_INSTALL_PATH variables (the Windows MSI sets
 * the second; the first may list several folders), the default install
 * folders, the registry's InstallDir on Windows, then PATH.
 */
export async function findVBoxManage(host: LocateHost): Promise<FoundVBoxManage | undefined> {
  const { env, platform } = host;
  const path = platform === 'win32' ? win32 : posix;
  const name = programName(platform);
  const tried: string[] = [];
  const sep = platform === 'win32' ? ';' : ':';
  const check = async (dir: string, source: VBoxManageSource): Promise<FoundVBoxManage | undefined> => {
    const candidate = path.join(dir, name);
    tried.push(`${candidate} (${source})`);
    return (await host.isProgram(candidate)) ? { path: candidate, source, tried } : undefined;
  };
  for (const variable of ['VBOX_INSTALL_PATH', 'VBOX_MSI_INSTALL_PATH'] as const) {
    for (const dir of (env[variable] ?? '').split(sep).map((d) => d.trim()).filter((d) => d !== '')) {
      const found = await check(dir, variable);
      if (found !== undefined) return found;
    }
  }
  for (const dir of defaultFolders(env, platform)) {
    const found = await check(dir, 'default folder');
    if (found !== undefined) return found;
  }
  if (platform === 'win32') {
    const dir = await host.registryInstallDir();
    if (dir !== undefined) {
      const found = await check(dir, 'registry InstallDir');
      if (found !== undefined) return found;
    } else {
      tried.push('HKLM\\SOFTWARE\\Oracle\\VirtualBox InstallDir (registry): no value');
    }
  }
  const onPath = await findOnPath('VBoxManage', { env, platform });
  tried.push('VBoxManage on PATH');
  return onPath === undefined ? undefined : { path: onPath, source: 'PATH', tried };
}

export async function isProgram(path: string, platform: NodeJS.Platform): Promise<boolean> {
  try {
    await access(path, platform === 'win32' ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** This machine, with `reg query` through the exec layer on Windows. */
export function localLocateHost(env: NodeJS.ProcessEnv, platform: NodeJS.Platform, exec: typeof run): LocateHost {
  return {
    env,
    platform,
    isProgram: (p) => isProgram(p, platform),
    registryInstallDir: async () => (platform === 'win32' ? (await readRegistryValue(exec, 'HKLM\\SOFTWARE\\Oracle\\VirtualBox', 'InstallDir'))?.data : undefined),
  };
}

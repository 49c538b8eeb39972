import { access, constants } from 'node:fs/promises';
import { dirname, posix, win32 } from 'node:path';
import type { Exec } from '../../src/host/process.ts';
import { findOnPath } from '../../src/host/path-search.ts';
import { readRegistryValue } from '../../src/host/windows-registry.ts';

/**
 * Where VMware keeps its programs and its vmnet8 files on each OS, and how
 * the driver finds vmrun. The driver and its checks take one VmwareHost, so
 * the tests run them on Linux against a scripted vmrun and files in a
 * temporary folder.
 */

export type { Exec };

/** vmrun's -T: Workstation (Windows, Linux) or Fusion (macOS). */
export type VmwareProduct = 'ws' | 'fusion';

export interface LeaseFile {
  path: string;
  format: 'isc' | 'bootpd';
}

export interface VmwareHost {
  platform: NodeJS.Platform;
  /** The host CPU (process.arch); the images are x86_64, which Fusion on Apple silicon cannot run. */
  arch?: string;
  env: NodeJS.ProcessEnv;
  /** Searched after PATH and the registry, in order. */
  installDirs: readonly string[];
  /** vmnet8's configuration: `networking` (Linux, macOS) or vmnetnat.conf (Windows). */
  networkConfig: string;
  /** vmnet8's DHCP leases, in the order they are read. */
  leaseFiles: readonly LeaseFile[];
}

export function productFor(platform: NodeJS.Platform): VmwareProduct {
  return platform === 'darwin' ? 'fusion' : 'ws';
}

/** Why this host cannot run the driver's x86_64 guests, or undefined. */
export function unsupportedArch(platform: NodeJS.Platform, arch: string | undefined): string | undefined {
  return platform === 'darwin' && arch === 'arm64'
    ? 'this Mac has Apple silicon (arm64): VMware Fusion there runs only arm64 guests, and devcluster\'s VMware images (photon-5 VMDK) are x86_64'
    : undefined;
}

export function productName(platform: NodeJS.Platform): string {
  return platform === 'darwin' ? 'VMware Fusion' : 'VMware Workstation';
}

function programData(env: NodeJS.ProcessEnv): string {
  return env['ProgramData'] ?? env['PROGRAMDATA'] ?? env['ALLUSERSPROFILE'] ?? 'C:\\ProgramData';
}

/** The real host's layout for a platform. */
export function defaultVmwareHost(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env, arch: string = process.arch): VmwareHost {
  if (platform === 'win32') {
    const data = win32.join(programData(env), 'VMware');
    const pf86 = env['ProgramFiles(x86)'] ?? 'C:\\Program Files (x86)';
    const pf = env['ProgramFiles'] ?? 'C:\\Program Files';
    return {
      platform,
      arch,
      env,
      installDirs: [win32.join(pf86, 'VMware', 'VMware Workstation'), win32.join(pf, 'VMware', 'VMware Workstation')],
      networkConfig: win32.join(data, 'vmnetnat.conf'),
      leaseFiles: [{ path: win32.join(data, 'vmnetdhcp.leases'), format: 'isc' }],
    };
  }
  if (platform === 'darwin') {
    const prefs = '/Library/Preferences/VMware Fusion';
    return {
      platform,
      arch,
      env,
      installDirs: ['/Applications/VMware Fusion.app/Contents/Library', '/Applications/VMware Fusion.app/Contents/Public'],
      networkConfig: posix.join(prefs, 'networking'),
      // Fusion's own vmnet-dhcpd; Fusion 12.0 and 12.1 on Big Sur used macOS's vmnet and bootpd instead.
      leaseFiles: [
        { path: '/var/db/vmware/vmnet-dhcpd-vmnet8.leases', format: 'isc' },
        { path: '/var/db/dhcpd_leases', format: 'bootpd' },
      ],
    };
  }
  return {
    platform,
    arch,
    env,
    installDirs: ['/usr/bin', '/usr/local/bin'],
    networkConfig: '/etc/vmware/networking',
    leaseFiles: [{ path: '/etc/vmware/vmnet8/dhcpd/dhcpd.leases', format: 'isc' }],
  };
}

/** Registry values that name Workstation's folder, in the order they are asked. */
export const REGISTRY_LOCATIONS: ReadonlyArray<{ key: string; value: string }> = [
  { key: 'HKLM\\SOFTWARE\\WOW6432Node\\VMware, Inc.\\VMware Workstation', value: 'InstallPath' },
  { key: 'HKLM\\SOFTWARE\\VMware, Inc.\\VMware Workstation', value: 'InstallPath' },
  { key: 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\App Paths\\vmware.exe', value: 'Path' },
];

export interface VmrunFound {
  path: string;
  /** How it was found, for doctor and errors: "the vmware-vmrun setting", "PATH", "registry <key>\\<value>", "install folder". */
  source: string;
}

export interface VmrunSearch {
  found?: VmrunFound;
  /** Every place looked at, in order. */
  tried: string[];
}

async function executable(path: string, platform: NodeJS.Platform): Promise<boolean> {
  return access(path, platform === 'win32' ? constants.F_OK : constants.X_OK).then(() => true, () => false);
}

function joinFor(platform: NodeJS.Platform): (...parts: string[]) => string {
  return platform === 'win32' ? win32.join : posix.join;
}

function programName(name: string, platform: NodeJS.Platform): string {
  return platform === 'win32' ? `${name}.exe` : name;
}

/**
 * vmrun, found as the issue asks and minikube did not: the vmware-vmrun
 * setting when it is a path; else PATH; else (Windows) the install path
 * the registry gives; else the default install folders.
 */
export async function findVmrun(setting: string, host: VmwareHost, exec: Exec): Promise<VmrunSearch> {
  const tried: string[] = [];
  const name = programName('vmrun', host.platform);
  if (setting !== 'auto') {
    tried.push(`the vmware-vmrun setting (${setting})`);
    return (await executable(setting, host.platform)) ? { found: { path: setting, source: 'the vmware-vmrun setting' }, tried } : { tried };
  }
  tried.push('PATH');
  const onPath = await findOnPath('vmrun', { env: host.env, platform: host.platform });
  if (onPath !== undefined) return { found: { path: onPath, source: 'PATH' }, tried };
  const join = joinFor(host.platform);
  if (host.platform === 'win32') {
    for (const loc of REGISTRY_LOCATIONS) {
      tried.push(`registry ${loc.key}\\${loc.value}`);
      const v = await readRegistryValue(exec, loc.key, loc.value);
      if (v === undefined) continue;
      const candidate = join(v.data, name);
      if (await executable(candidate, host.platform)) return { found: { path: candidate, source: `registry ${loc.key}\\${loc.value}` }, tried };
      tried.push(`${candidate} (named by the registry, missing)`);
    }
  }
  for (const dir of host.installDirs) {
    const candidate = join(dir, name);
    tried.push(candidate);
    if (await executable(candidate, host.platform)) return { found: { path: candidate, source: 'install folder' }, tried };
  }
  return { tried };
}

/** vmware-vdiskmanager beside vmrun (every VMware product installs them together), else on PATH. */
export async function findVdiskManager(vmrun: string, host: VmwareHost): Promise<string | undefined> {
  const name = programName('vmware-vdiskmanager', host.platform);
  const dir = host.platform === 'win32' ? win32.dirname(vmrun) : dirname(vmrun);
  const dirs = [dir, ...host.installDirs];
  for (const d of dirs) {
    const candidate = joinFor(host.platform)(d, name);
    if (await executable(candidate, host.platform)) return candidate;
  }
  return findOnPath('vmware-vdiskmanager', { env: host.env, platform: host.platform });
}

/** Where Windows' VMnetDHCP service says it keeps its leases, when an install moved them. */
export const VMNET_DHCP_PARAMETERS = 'HKLM\\SYSTEM\\CurrentControlSet\\services\\VMnetDHCP\\Parameters';

/** %NAME% references in a REG_EXPAND_SZ value, from the environment (names ignore case on Windows); unknown ones are left as they are. */
export function expandWindowsEnv(value: string, env: NodeJS.ProcessEnv): string {
  const lower = new Map(Object.entries(env).map(([k, v]) => [k.toLowerCase(), v]));
  return value.replace(/%([^%\\/]+)%/g, (whole, name: string) => lower.get(name.toLowerCase()) ?? whole);
}

/** The host's lease files, with (on Windows) the one VMnetDHCP's registry names first. */
export async function leaseFilesFor(host: VmwareHost, exec: Exec): Promise<LeaseFile[]> {
  if (host.platform !== 'win32') return [...host.leaseFiles];
  const v = await readRegistryValue(exec, VMNET_DHCP_PARAMETERS, 'LeaseFile');
  // reg query prints a REG_EXPAND_SZ as stored ("%ALLUSERSPROFILE%\VMware\..."): no file has that name.
  const path = v === undefined ? undefined : expandWindowsEnv(v.data, host.env);
  if (path === undefined || host.leaseFiles.some((l) => l.path.toLowerCase() === path.toLowerCase())) return [...host.leaseFiles];
  return [{ path, format: 'isc' }, ...host.leaseFiles];
}

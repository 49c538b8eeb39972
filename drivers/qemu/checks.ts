import { access, constants } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { findQemuProgram } from '../../src/host/qemu-dirs.ts';
import { fail, pass, skip, warn, errorText } from '../../src/doctor/outcome.ts';
import { settingOf } from '../../src/doctor/context.ts';
import { hostPackageManager, installFix } from '../../src/doctor/install-fix.ts';
import type { NeededTool } from '../../src/doctor/install-fix.ts';
import type { Check, CheckContext, Fix } from '../../src/doctor/types.ts';
import { acceleratorVerdict } from './accel.ts';
import { readJsonIfExists } from '../../src/profile/atomic.ts';
import { join } from 'node:path';

/**
 * The QEMU driver's doctor checks: the binaries, access to /dev/kvm, and
 * whether the platform's accelerator can really start a VM. /dev/kvm
 * existing proves little (nested virtualisation often refuses the host CPU
 * model), so the accelerator check starts QEMU with it and asks over QMP.
 */

export type QemuAccel = 'kvm' | 'hvf' | 'whpx';

export function platformAccel(platform: NodeJS.Platform): QemuAccel | undefined {
  return platform === 'linux' ? 'kvm' : platform === 'darwin' ? 'hvf' : platform === 'win32' ? 'whpx' : undefined;
}

export function qemuSystemName(arch: string, platform: NodeJS.Platform): string {
  return `qemu-system-${arch === 'arm64' ? 'aarch64' : 'x86_64'}${platform === 'win32' ? '.exe' : ''}`;
}

async function findQemuBinary(ctx: CheckContext, name: string): Promise<string | undefined> {
  return findQemuProgram(name.replace(/\.exe$/, ''), { env: ctx.env, platform: ctx.host.platform });
}

/** "QEMU emulator version 7.2.22 (Debian ...)" -> [7, 2, 22]. */
export function parseQemuVersion(text: string): [number, number, number] | undefined {
  const m = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** The oldest QEMU the driver's command line is written for (Ubuntu 22.04 ships 6.2). */
export const MIN_QEMU: readonly [number, number] = [6, 2];

/**
 * The packages that provide QEMU's two programs, per package manager and
 * host architecture. Debian and openSUSE name packages by target family
 * (qemu-system-arm holds qemu-system-aarch64); on Arm, Debian also needs the
 * UEFI firmware the virt machine boots with.
 */
export function qemuTools(arch: string, platform: NodeJS.Platform): { system: NeededTool; img: NeededTool } {
  const arm = arch === 'arm64';
  return {
    system: {
      name: qemuSystemName(arch, platform),
      packages: {
        'apt-get': arm ? 'qemu-system-arm qemu-efi-aarch64' : 'qemu-system-x86',
        dnf: arm ? 'qemu-system-aarch64' : 'qemu-system-x86',
        pacman: arm ? 'qemu-system-aarch64' : 'qemu-system-x86',
        zypper: arm ? 'qemu-arm' : 'qemu-x86',
        brew: 'qemu',
      },
    },
    img: { name: 'qemu-img', packages: { 'apt-get': 'qemu-utils', dnf: 'qemu-img', pacman: 'qemu-img', zypper: 'qemu-tools', brew: 'qemu' } },
  };
}

/** How to install QEMU here: the package manager's commands (applied by --fix), or winget's on Windows. */
async function qemuInstallFix(ctx: CheckContext, missing: readonly NeededTool[]): Promise<Fix> {
  if (ctx.host.platform === 'win32') {
    return {
      description: 'Install QEMU with winget, or with the installer from qemu.org into C:\\Program Files\\qemu.',
      commands: [{ shell: 'powershell', run: 'winget install --exact --id SoftwareFreedomConservancy.QEMU', elevated: false }],
    };
  }
  return installFix(await hostPackageManager(ctx), missing, 'QEMU');
}

interface QemuFound {
  system?: string;
  img?: string;
  version?: [number, number, number];
  problem?: string;
}

async function qemuFound(ctx: CheckContext): Promise<QemuFound> {
  return ctx.memo('qemu', async (c) => {
    const system = await findQemuBinary(c, qemuSystemName(c.host.arch, c.host.platform));
    const img = await findQemuBinary(c, c.host.platform === 'win32' ? 'qemu-img.exe' : 'qemu-img');
    if (system === undefined) return { ...(img === undefined ? {} : { img }) };
    try {
      const r = await c.exec(system, ['--version'], { timeoutMs: 10_000, parse: true });
      const version = parseQemuVersion(r.stdout);
      return { system, ...(img === undefined ? {} : { img }), ...(version === undefined ? { problem: 'no version in its output' } : { version }) };
    } catch (e) {
      return { system, ...(img === undefined ? {} : { img }), problem: errorText(e) };
    }
  });
}

const installedCheck: Check = {
  id: 'QEMU_NOT_INSTALLED',
  title: 'QEMU',
  category: 'hypervisor',
  looksAt: "qemu-system-<arch> and qemu-img on PATH (and the installers' default folders), and the QEMU version; --fix installs them with apt-get, dnf, pacman, zypper or brew",
  drivers: ['qemu'],
  fatal: true,
  exitCode: 65,
  timeoutMs: 60_000,
  async run(ctx) {
    const q = await qemuFound(ctx);
    const tools = qemuTools(ctx.host.arch, ctx.host.platform);
    const missing = [q.system === undefined ? tools.system : undefined, q.img === undefined ? tools.img : undefined].filter((x) => x !== undefined);
    if (missing.length > 0) return fail(`${missing.map((t) => t.name).join(' and ')} not found`, { fix: await qemuInstallFix(ctx, missing) });
    if (q.problem !== undefined || q.version === undefined) return fail(`${q.system} does not run: ${q.problem ?? 'unknown'}`, { fix: await qemuInstallFix(ctx, [tools.system]) });
    const v = q.version;
    const text = `QEMU ${v.join('.')} (${q.system})`;
    if (v[0] < MIN_QEMU[0] || (v[0] === MIN_QEMU[0] && v[1] < MIN_QEMU[1])) {
      return warn(`${text} is older than ${MIN_QEMU.join('.')}, the oldest devcluster is tested with`, {
        // A distribution ships one QEMU per release; reinstalling it would not make it newer.
        fix: { description: 'Update QEMU: from a newer release of this operating system, its backports, or qemu.org.', commands: [] },
      });
    }
    return pass(text, [`qemu-img: ${q.img}`]);
  },
};

const kvmPermissionCheck: Check = {
  id: 'QEMU_KVM_PERMISSION',
  title: 'KVM access',
  category: 'hypervisor',
  looksAt: 'that /dev/kvm can be opened for reading and writing by this user',
  platforms: ['linux'],
  drivers: ['qemu'],
  fatal: true,
  exitCode: 67,
  async run(ctx) {
    try {
      await access('/dev/kvm', constants.F_OK);
    } catch {
      return skip('there is no /dev/kvm on this host');
    }
    try {
      await access('/dev/kvm', constants.R_OK | constants.W_OK);
      ctx.evidence({ command: 'open /dev/kvm read-write', exitCode: 0 });
      return pass('/dev/kvm is readable and writable');
    } catch (e) {
      ctx.evidence({ command: 'open /dev/kvm read-write', error: (e as Error).message });
    }
    const user = userInfo().username;
    const soft = String(settingOf(ctx, 'qemu-accel', 'auto')) !== 'kvm';
    const outcome = soft ? warn : fail;
    return outcome(`${user} cannot open /dev/kvm${soft ? '; QEMU would fall back to slow software emulation' : ''}`, {
      fix: {
        description: 'Add yourself to the kvm group, then sign out and back in so the new group applies.',
        commands: [{ shell: 'sh', run: `sudo usermod -aG kvm ${user}`, elevated: true }],
        apply: async (c) => {
          await c.execElevated('usermod', ['-aG', 'kvm', user], { timeoutMs: 30_000 });
        },
        elevated: true,
        requires: ['relogin'],
      },
    });
  },
};

/** The kernel the profile's VM boots (recorded by the driver at create), so the doctor asks the same question as start. */
async function recordedKernel(ctx: CheckContext): Promise<string | undefined> {
  const state = (await readJsonIfExists(ctx.profilePaths.state).catch(() => undefined)) as { driverData?: { qemu?: { vm?: { kernel?: unknown } } } } | undefined;
  const kernel = state?.driverData?.qemu?.vm?.kernel;
  return typeof kernel === 'string' ? kernel : undefined;
}

const accelCheck: Check = {
  id: 'QEMU_ACCEL_UNAVAILABLE',
  title: 'QEMU acceleration',
  category: 'hypervisor',
  looksAt: "starts a paused QEMU VM with the platform accelerator (KVM, HVF or WHPX), asks it over QMP whether it runs, and test-boots the profile's kernel: the same verdict start uses, cached until reboot",
  drivers: ['qemu'],
  requires: ['QEMU_NOT_INSTALLED'],
  fatal: true,
  exitCode: 68,
  timeoutMs: 150_000,
  async run(ctx) {
    const setting = String(settingOf(ctx, 'qemu-accel', 'auto'));
    if (setting === 'tcg') return skip('software emulation (TCG) chosen with qemu-accel=tcg');
    const q = await qemuFound(ctx);
    if (q.system === undefined) return skip('QEMU is not installed');
    const v = await acceleratorVerdict({
      setting,
      qemu: q.system,
      kernel: await recordedKernel(ctx),
      cacheFile: join(ctx.home, 'cache', 'qemu-accel.json'),
      platform: ctx.host.platform,
      arch: ctx.host.arch,
      exec: ctx.exec,
      // The doctor changes nothing on disk (it also runs as start's preflight, before input is validated).
      writeCache: false,
    });
    const hw = v.hardware;
    if (hw === undefined) return skip(`no hardware accelerator on ${ctx.host.platform}`);
    const name = hw.accel.toUpperCase();
    if (hw.usable) return pass(`${name} with -cpu ${v.cpu}: ${v.reason}`, hw.fromCache ? ['verdict cached since this boot (a new QEMU or kernel probes again)'] : []);
    const soft = setting === 'auto';
    return (soft ? warn : fail)(`${name} cannot run the VM here: ${v.reason}`, {
      details: hw.accel === 'kvm' ? ['/dev/kvm can exist while KVM still refuses to run a VM, typically inside a VM without full nested virtualization.'] : [],
      fix: {
        description: soft
          ? 'Enable hardware virtualization (firmware setting, or nested virtualization on the outer hypervisor) to make the VM fast; nothing is needed for it to work.'
          : 'Enable hardware virtualization, or let devcluster fall back to software emulation by setting qemu-accel to auto.',
        commands: soft ? [] : [{ shell: 'sh', run: 'devcluster config set qemu-accel auto', elevated: false }],
      },
      related: hw.accel === 'kvm' ? ['kubernetes/minikube#5282'] : [],
    });
  },
};

export const QEMU_CHECKS: readonly Check[] = [installedCheck, kvmPermissionCheck, accelCheck];


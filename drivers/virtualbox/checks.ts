import { join } from 'node:path';
import { errorText, fail, pass, skip, warn } from '../../src/doctor/outcome.ts';
import type { Check, CheckContext, Fix } from '../../src/doctor/types.ts';
import { WINDOWS_QUERIES } from '../../src/doctor/windows-queries.ts';
import { formatCidr } from '../../src/host/ipv4.ts';
import type { Ipv4Net } from '../../src/host/ipv4.ts';
import { powershellJson } from '../../src/host/powershell.ts';
import { readTextIfExists } from '../../src/host/read-if-exists.ts';
import { DEFAULT_ALLOWED, allowedRanges } from './hostonly-plan.ts';
import { findVBoxManage, localLocateHost } from './locate.ts';
import type { FoundVBoxManage } from './locate.ts';
import { parseHostOnlyIfs, parseNetworksConf, versionAtLeast } from './parse.ts';
import type { VBoxVersion } from './parse.ts';
import { explainVBoxLog } from './vbox-log.ts';
import { MIN_VBOX, VBoxManage, installAdvice } from './vboxmanage.ts';

/**
 * The VirtualBox driver's doctor checks: VBoxManage and its version, what the
 * last failed start's VBox.log says about VT-x/AMD-V and Hyper-V, the
 * host-only range VirtualBox allows (/etc/vbox/networks.conf), and on Windows
 * the right to create a host-only adapter.
 */

const DRIVERS = ['virtualbox'] as const;

interface Found {
  found?: FoundVBoxManage;
  version?: VBoxVersion;
  warnings: string[];
  raw?: string;
  problem?: string;
}

async function vbox(ctx: CheckContext): Promise<Found> {
  return ctx.memo('virtualbox', async (c) => {
    const found = await findVBoxManage(localLocateHost(c.env, c.host.platform, c.exec));
    if (found === undefined) return { warnings: [] };
    const vbm = new VBoxManage(found, { attempts: 1 });
    try {
      const v = await vbm.version(c.signal);
      c.evidence({ command: `${found.path} --version`, stdout: v.raw });
      return { found, ...(v.version === undefined ? {} : { version: v.version }), warnings: v.warnings, raw: v.raw };
    } catch (e) {
      return { found, warnings: [], problem: errorText(e) };
    }
  });
}

function installFix(platform: NodeJS.Platform): Fix {
  const commands = platform === 'win32'
    ? [{ shell: 'powershell' as const, run: 'winget install --exact --id Oracle.VirtualBox', elevated: false }]
    : platform === 'darwin'
      ? [{ shell: 'sh' as const, run: 'brew install --cask virtualbox', elevated: false }]
      : [];
  return { description: `${installAdvice(platform)} If VirtualBox is installed in another folder, set VBOX_INSTALL_PATH to it.`, commands };
}

const installedCheck: Check = {
  id: 'VBOX_NOT_INSTALLED',
  title: 'VirtualBox',
  category: 'hypervisor',
  looksAt: 'VBoxManage in VBOX_INSTALL_PATH, VBOX_MSI_INSTALL_PATH, the default install folder, the registry InstallDir (Windows) and PATH; its --version (6.1 or newer) and the warnings it prints (kernel driver not loaded)',
  drivers: DRIVERS,
  fatal: true,
  exitCode: 65,
  timeoutMs: 30_000,
  async run(ctx) {
    const v = await vbox(ctx);
    if (v.found === undefined) return fail('VBoxManage was not found: VirtualBox is not installed here', { fix: installFix(ctx.host.platform), details: ['looked in: VBOX_INSTALL_PATH, VBOX_MSI_INSTALL_PATH, the default install folders, the registry (Windows), PATH'] });
    const where = `${v.found.path}, found through ${v.found.source}`;
    if (v.problem !== undefined) return fail(`VBoxManage (${where}) does not run: ${v.problem}`, { fix: installFix(ctx.host.platform) });
    if (v.version === undefined) {
      return fail(`VBoxManage (${where}) printed no version${v.warnings.length > 0 ? `: ${v.warnings[0]}` : ''}`, { fix: driverFix(ctx.host.platform), details: v.warnings });
    }
    if (!versionAtLeast(v.version, MIN_VBOX[0], MIN_VBOX[1])) {
      return fail(`VirtualBox ${v.version.text} is older than ${MIN_VBOX.join('.')}, the oldest devcluster supports`, { fix: installFix(ctx.host.platform) });
    }
    if (ctx.host.platform === 'darwin' && ctx.host.arch === 'arm64' && !versionAtLeast(v.version, 7, 1)) {
      return fail(`VirtualBox ${v.version.text} does not run VMs on Apple silicon; 7.1 or newer does`, { fix: installFix(ctx.host.platform) });
    }
    // A kernel driver that is not loaded still lets --version answer, with a warning: VMs will not start.
    if (v.warnings.length > 0) return fail(`VirtualBox ${v.version.text} (${where}) warns: ${v.warnings[0]}`, { fix: driverFix(ctx.host.platform), details: v.warnings });
    return pass(`VirtualBox ${v.version.text} (${where})`);
  },
};

function driverFix(platform: NodeJS.Platform): Fix {
  if (platform === 'linux') {
    return {
      description: 'Build and load VirtualBox\'s kernel modules (they need the headers of the running kernel), then check again.',
      commands: [{ shell: 'sh', run: 'sudo /sbin/vboxconfig', elevated: true }],
    };
  }
  if (platform === 'darwin') return { description: 'Allow VirtualBox\'s system extension in System Settings > Privacy & Security, restart, or reinstall VirtualBox.', commands: [], requires: ['reboot'] };
  return { description: 'Reinstall VirtualBox and restart Windows.', commands: [], requires: ['reboot'] };
}

/** The profile's VM log, where VirtualBox says why a start failed. */
function vboxLogPath(ctx: CheckContext): string {
  return join(ctx.profilePaths.dir, 'virtualbox', `devcluster-${ctx.profile}`, 'Logs', 'VBox.log');
}

const vtxCheck: Check = {
  id: 'VBOX_VTX_UNAVAILABLE',
  title: 'VirtualBox VT-x/AMD-V',
  category: 'hypervisor',
  looksAt: 'the profile VM\'s Logs/VBox.log for VERR_VMX_* / VERR_SVM_* (VT-x or AMD-V disabled or missing) after a start',
  drivers: DRIVERS,
  requires: ['VBOX_NOT_INSTALLED'],
  exitCode: 38,
  async run(ctx) {
    const path = vboxLogPath(ctx);
    const log = await readTextIfExists(path);
    ctx.evidence({ command: `read ${path}`, ...(log === undefined ? { error: 'absent' } : {}) });
    if (log === undefined) return skip('the VM has not been started yet: VirtualBox reports VT-x/AMD-V problems in its log at the first start');
    const verdict = explainVBoxLog(log);
    if (verdict === undefined || (verdict.reason !== 'HOST_VTX_DISABLED' && verdict.reason !== 'HOST_VTX_MISSING')) return pass(`the last start's VBox.log shows no VT-x/AMD-V failure`);
    return fail(`VirtualBox could not use hardware virtualization: ${verdict.cause} (${verdict.code})`, {
      fix: { description: verdict.fix, commands: [], requires: ['reboot'] },
      details: [verdict.line],
      related: ['kubernetes/minikube#5282', 'kubernetes/minikube#20059'],
    });
  },
};

const hypervCheck: Check = {
  id: 'VBOX_HYPERV_CONFLICT',
  title: 'VirtualBox beside Hyper-V',
  category: 'hypervisor',
  looksAt: 'whether a hypervisor runs under Windows (Win32_ComputerSystem.HypervisorPresent: Hyper-V, WSL 2, Memory Integrity) and VERR_NEM_* in the VM\'s VBox.log',
  platforms: ['win32'],
  drivers: DRIVERS,
  requires: ['VBOX_NOT_INSTALLED'],
  exitCode: 61,
  async run(ctx) {
    const log = (await readTextIfExists(vboxLogPath(ctx))) ?? '';
    const verdict = explainVBoxLog(log);
    const fix: Fix = {
      description: 'Use the Hyper-V or QEMU driver, which run beside Hyper-V; or turn the hypervisor off (this disables WSL 2 and Docker Desktop) and restart.',
      commands: [{ shell: 'powershell', run: 'bcdedit /set hypervisorlaunchtype off', elevated: true }],
      requires: ['reboot'],
    };
    if (verdict?.reason === 'VBOX_HYPERV_CONFLICT') return fail(`VirtualBox could not run beside Hyper-V: ${verdict.code}`, { fix, details: [verdict.line], related: ['kubernetes/minikube#4587', 'kubernetes/minikube#6074'] });
    const present = await powershellJson<boolean>(ctx.exec, WINDOWS_QUERIES.hypervisorPresent);
    if (present !== true) return pass('no hypervisor runs under Windows: VirtualBox uses VT-x/AMD-V itself');
    const v = await vbox(ctx);
    if (v.version !== undefined && v.version.major < 7) return fail(`a hypervisor runs under Windows (Hyper-V, WSL 2 or Memory Integrity) and VirtualBox ${v.version.text} cannot share VT-x with it reliably`, { fix: { ...fix, description: `Update VirtualBox to 7, which runs on Hyper-V's API (slowly), or: ${fix.description}` } });
    return warn('a hypervisor runs under Windows (Hyper-V, WSL 2 or Memory Integrity): VirtualBox runs on its API (NEM), slower and less reliably', { fix });
  },
};

/** The driver takes a /24 inside an allowed range: a range narrower than that is no use. */
function allowsAny(ranges: readonly Ipv4Net[]): boolean {
  return ranges.some((r) => r.prefix <= 24);
}

const rangeCheck: Check = {
  id: 'VBOX_HOSTONLY_RANGE',
  title: 'VirtualBox host-only range',
  category: 'network',
  looksAt: '/etc/vbox/networks.conf: VirtualBox 6.1.28+ on Linux and macOS (before 7) allows host-only addresses only in 192.168.56.0/21 unless the file lists other ranges',
  platforms: ['linux', 'darwin'],
  drivers: DRIVERS,
  requires: ['VBOX_NOT_INSTALLED'],
  exitCode: 71,
  async run(ctx) {
    const v = await vbox(ctx);
    if (v.version === undefined) return skip('the VirtualBox version is not known');
    const text = await readTextIfExists('/etc/vbox/networks.conf');
    ctx.evidence({ command: 'read /etc/vbox/networks.conf', ...(text === undefined ? { error: 'absent' } : { stdout: text }) });
    const allowed = allowedRanges(ctx.host.platform, v.version, text === undefined ? undefined : parseNetworksConf(text));
    if (allowed === undefined) return pass(`VirtualBox ${v.version.text} does not restrict host-only ranges here`);
    if (text === undefined) return pass(`no /etc/vbox/networks.conf: VirtualBox allows ${DEFAULT_ALLOWED}, where devcluster puts its host-only networks`);
    if (allowed.length === 0 || !allowsAny(allowed)) {
      return fail('/etc/vbox/networks.conf allows no IPv4 /24 for a host-only network', {
        fix: {
          description: `Add a line that allows ${DEFAULT_ALLOWED} (VirtualBox's default) to /etc/vbox/networks.conf; lines start with "*" and list ranges.`,
          commands: [{ shell: 'sh', run: `echo '* ${DEFAULT_ALLOWED}' | sudo tee -a /etc/vbox/networks.conf`, elevated: true }],
        },
        related: ['kubernetes/minikube#12764', 'kubernetes/minikube#12811'],
      });
    }
    return pass(`/etc/vbox/networks.conf allows ${allowed.map(formatCidr).join(', ')}`);
  },
};

const rightsCheck: Check = {
  id: 'VBOX_HOSTONLY_RIGHTS',
  title: 'Host-only adapter creation',
  category: 'network',
  looksAt: 'on Windows, whether devcluster may create a VirtualBox host-only adapter: an elevated (Administrator) shell, or an adapter that already exists',
  platforms: ['win32'],
  drivers: DRIVERS,
  requires: ['VBOX_NOT_INSTALLED'],
  exitCode: 67,
  async run(ctx) {
    const v = await vbox(ctx);
    if (v.found === undefined) return skip('VBoxManage was not found');
    const vbm = new VBoxManage(v.found, { attempts: 1 });
    const ifs = parseHostOnlyIfs((await vbm.run(['list', 'hostonlyifs'], { timeoutMs: 20_000 })).stdout);
    // `net session` succeeds only in an elevated shell: a documented way to ask without PowerShell.
    const elevated = (await ctx.exec('net', ['session'], { timeoutMs: 10_000, parse: true, okExitCodes: [1, 2] }).catch(() => undefined))?.exitCode === 0;
    if (elevated) return pass('this shell is elevated: host-only adapters can be created');
    if (ifs.length > 0) return pass(`${ifs.length} host-only adapter(s) exist; creating another asks for Administrator approval`, ifs.map((i) => i.name));
    return warn('creating the host-only adapter the first start needs asks for Administrator approval (a prompt that may open minimized)', {
      fix: { description: 'Run the first `devcluster start --driver virtualbox` from an elevated terminal, or accept the Windows prompt when it appears.', commands: [] },
      related: ['docker/machine#2972', 'kubernetes/minikube#3614'],
    });
  },
};

export const VIRTUALBOX_CHECKS: readonly Check[] = [installedCheck, vtxCheck, hypervCheck, rangeCheck, rightsCheck];

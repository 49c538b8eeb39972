import { access, constants, readFile, statfs } from 'node:fs/promises';
import { freemem } from 'node:os';
import { dirname } from 'node:path';
import { parseOsRelease } from '../../host/os-release.ts';
import { fail, mib, pass, skip, warn, errorText } from '../outcome.ts';
import { settingOf } from '../context.ts';
import { powershellJson } from '../../host/powershell.ts';
import { WINDOWS_QUERIES } from '../windows-queries.ts';
import type { Check, CheckContext, CheckOutcome, DoctorContext } from '../types.ts';

/** Kubernetes refuses to initialise a control plane with fewer. */
const MIN_HOST_CPUS = 2;
/** Windows 10 1809 / Server 2019: the oldest build with the Hyper-V and networking cmdlets devcluster uses. */
export const MIN_WINDOWS_BUILD = 17763;
/** macOS 11: the oldest with Hypervisor.framework features QEMU and HyperKit need today. */
export const MIN_MACOS_MAJOR = 11;

async function readText(ctx: CheckContext, path: string): Promise<string | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    ctx.evidence({ command: `read ${path}`, stdout: text.length > 4000 ? `${text.slice(0, 4000)}\n...` : text });
    return text;
  } catch (e) {
    ctx.evidence({ command: `read ${path}`, error: (e as Error).message });
    return undefined;
  }
}

/** `sw_vers`: "ProductName:\tmacOS" lines. */
export function parseSwVers(text: string): { name: string; version: string; build: string } {
  const get = (key: string) => new RegExp(`^${key}:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { name: get('ProductName'), version: get('ProductVersion'), build: get('BuildVersion') };
}

export function evaluateMacOs(v: { name: string; version: string; build: string }, arch: string): CheckOutcome {
  const major = Number(v.version.split('.')[0]);
  const text = `${v.name || 'macOS'} ${v.version} (${v.build}), ${arch}`;
  if (!Number.isFinite(major) || major < MIN_MACOS_MAJOR) {
    return fail(`${text}: devcluster needs macOS ${MIN_MACOS_MAJOR} or newer`, {
      fix: { description: `Update macOS to version ${MIN_MACOS_MAJOR} or newer in System Settings, under General and Software Update.`, commands: [] },
    });
  }
  return pass(text);
}

export interface WindowsOs {
  Caption?: string;
  Version?: string;
  BuildNumber?: string;
  OSArchitecture?: string;
}

export function evaluateWindowsOs(os: WindowsOs): CheckOutcome {
  const build = Number(os.BuildNumber ?? '0');
  const text = `${os.Caption ?? 'Windows'} (version ${os.Version ?? '?'}, build ${os.BuildNumber ?? '?'}), ${os.OSArchitecture ?? ''}`.replace(/, $/, '');
  if (!(build >= MIN_WINDOWS_BUILD)) {
    return fail(`${text}: devcluster needs Windows 10 version 1809 (build ${MIN_WINDOWS_BUILD}) or newer`, {
      fix: { description: 'Install the latest Windows feature update from Settings, under Windows Update.', commands: [] },
    });
  }
  return pass(text);
}

const osCheck: Check = {
  id: 'HOST_OS_UNSUPPORTED',
  title: 'Operating system',
  category: 'host',
  looksAt: 'the OS name and version: /etc/os-release and the kernel (Linux), sw_vers (macOS), Win32_OperatingSystem (Windows)',
  fatal: true,
  exitCode: 36,
  async run(ctx) {
    const { platform, arch, release } = ctx.host;
    if (platform === 'linux') {
      const osr = parseOsRelease((await readText(ctx, '/etc/os-release')) ?? '');
      return pass(`${osr['PRETTY_NAME'] ?? 'Linux'}, kernel ${release}, ${arch}`);
    }
    if (platform === 'darwin') {
      const r = await ctx.exec('sw_vers', [], { timeoutMs: 5000, parse: true });
      return evaluateMacOs(parseSwVers(r.stdout), arch);
    }
    if (platform === 'win32') {
      return evaluateWindowsOs((await powershellJson<WindowsOs>(ctx.exec, WINDOWS_QUERIES.operatingSystem)) ?? {});
    }
    return fail(`${platform} is not supported: devcluster runs on Windows, macOS and Linux`);
  },
};

const SUPPORTED_ARCHES = ['x64', 'arm64'];

const archCheck: Check = {
  id: 'HOST_ARCH_UNSUPPORTED',
  title: 'Architecture',
  category: 'host',
  looksAt: 'the CPU architecture: devcluster runs on x64 and arm64',
  fatal: true,
  exitCode: 36,
  async run(ctx) {
    const { arch } = ctx.host;
    if (!SUPPORTED_ARCHES.includes(arch)) return fail(`${arch} is not supported: devcluster runs on x64 and arm64`);
    // HyperKit's Intel-only rule is its own check (HYPERKIT_CPU_UNSUPPORTED), which also sees through Rosetta 2.
    return pass(arch);
  },
};

export function evaluateLinuxVirtualization(kvmDevice: boolean, cpuinfo: string, driver: string, qemuAccel: string): CheckOutcome {
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  const vendor = flags.has('vmx') ? 'Intel VT-x' : flags.has('svm') ? 'AMD-V' : undefined;
  if (kvmDevice) return pass(`/dev/kvm is present${vendor === undefined ? '' : ` (${vendor})`}`);
  // QEMU falls back to software emulation unless KVM was asked for explicitly.
  const soft = driver === 'qemu' && qemuAccel !== 'kvm';
  const status = soft ? warn : fail;
  const suffix = soft ? '; QEMU will use software emulation, which is several times slower' : '';
  if (vendor !== undefined) {
    const module = vendor === 'AMD-V' ? 'kvm_amd' : 'kvm_intel';
    return status(`the CPU has ${vendor} but /dev/kvm is missing: the ${module} kernel module is not loaded${suffix}`, {
      fix: {
        description: `Load the ${module} kernel module (and make it load at boot through your distribution's module configuration).`,
        commands: [{ shell: 'sh', run: `sudo modprobe ${module}`, elevated: true }],
        apply: async (c) => {
          await c.execElevated('modprobe', [module], { timeoutMs: 30_000 });
        },
        elevated: true,
      },
    });
  }
  return status(`no hardware virtualization: the CPU shows neither vmx nor svm and there is no /dev/kvm${suffix}`, {
    details: ['Virtualization is switched off in the firmware (BIOS/UEFI), or this machine is itself a VM without nested virtualization.'],
    fix: {
      description: 'Enable Intel VT-x or AMD-V (often called SVM Mode) in the firmware setup, or enable nested virtualization on the outer hypervisor when this is a VM.',
      commands: [],
    },
    related: ['kubernetes/minikube#5282', 'kubernetes/minikube#7074'],
  });
}

export function evaluateMacVirtualization(hvSupport: string, vmmPresent: string | undefined): CheckOutcome {
  if (hvSupport.trim() === '1') return pass('Hypervisor.framework is available (kern.hv_support = 1)');
  const inVm = vmmPresent?.trim() === '1';
  return fail(`Hypervisor.framework is not available (kern.hv_support = ${hvSupport.trim() || '?'})${inVm ? '; this Mac is itself a virtual machine' : ''}`, {
    fix: {
      description: inVm ? 'Enable nested virtualization for this macOS VM on its host, or run devcluster on the physical Mac.' : 'This Mac does not offer hardware virtualization to applications; devcluster needs a Mac that does.',
      commands: [],
    },
  });
}

export interface WindowsProcessor {
  Name?: string;
  VirtualizationFirmwareEnabled?: boolean | null;
  SecondLevelAddressTranslationExtensions?: boolean | null;
}

/**
 * Win32_Processor's virtualization fields read False while a hypervisor runs,
 * so they are only meaningful when HypervisorPresent is False.
 */
export function evaluateWindowsVirtualization(hypervisorPresent: boolean, processors: WindowsProcessor[], driver: string): CheckOutcome {
  if (hypervisorPresent) return pass('a hypervisor is running (Hyper-V / Windows Hypervisor Platform)');
  const cpu = processors[0] ?? {};
  if (cpu.VirtualizationFirmwareEnabled === false) {
    return fail('virtualization (VT-x/AMD-V) is disabled in the firmware', {
      fix: { description: 'Restart into the firmware setup (BIOS/UEFI) and enable Intel Virtualization Technology or AMD SVM Mode.', commands: [], requires: ['reboot'] },
      related: ['kubernetes/minikube#5282', 'kubernetes/minikube#3900'],
    });
  }
  if (driver === 'hyperv' && cpu.SecondLevelAddressTranslationExtensions === false) {
    return fail('the CPU lacks second-level address translation (SLAT), which Hyper-V requires');
  }
  return pass('virtualization is enabled in the firmware; no hypervisor is running yet');
}

const virtCheck: Check = {
  id: 'HOST_VIRT_UNAVAILABLE',
  title: 'Hardware virtualization',
  category: 'host',
  looksAt: '/dev/kvm and the CPU flags (Linux), kern.hv_support (macOS), HypervisorPresent and Win32_Processor (Windows)',
  fatal: true,
  exitCode: 38,
  async run(ctx) {
    const { platform } = ctx.host;
    if (platform === 'linux') {
      let kvm = true;
      try {
        await access('/dev/kvm', constants.F_OK);
      } catch {
        kvm = false;
      }
      ctx.evidence({ command: 'test -e /dev/kvm', exitCode: kvm ? 0 : 1 });
      const cpuinfo = (await readFile('/proc/cpuinfo', 'utf8').catch(() => '')).split('\n\n')[0] ?? '';
      ctx.evidence({ command: 'read /proc/cpuinfo (first CPU flags)', stdout: /^flags\s*:.*$/m.exec(cpuinfo)?.[0] ?? '' });
      return evaluateLinuxVirtualization(kvm, cpuinfo, ctx.driver, settingOf(ctx, 'qemu-accel', 'auto'));
    }
    if (platform === 'darwin') {
      const hv = await ctx.exec('sysctl', ['-n', 'kern.hv_support'], { timeoutMs: 5000, parse: true });
      const vmm = await ctx.exec('sysctl', ['-n', 'kern.hv_vmm_present'], { timeoutMs: 5000, parse: true }).catch(() => undefined);
      return evaluateMacVirtualization(hv.stdout, vmm?.stdout);
    }
    if (platform === 'win32') {
      const present = await powershellJson<boolean>(ctx.exec, WINDOWS_QUERIES.hypervisorPresent);
      const cpus = present === true ? [] : ((await powershellJson<WindowsProcessor[]>(ctx.exec, WINDOWS_QUERIES.processorVirtualization)) ?? []);
      return evaluateWindowsVirtualization(present === true, cpus, ctx.driver);
    }
    return skip(`not checked on ${platform}`);
  },
};

const cpuCheck: Check = {
  id: 'HOST_CPUS_LOW',
  title: 'CPUs',
  category: 'host',
  looksAt: "the host's CPU count against the cpus setting and Kubernetes' minimum of 2",
  fatal: true,
  exitCode: 29,
  async run(ctx) {
    const cores = ctx.host.cpus;
    const wanted = Number(settingOf(ctx, 'cpus', 2));
    if (cores < MIN_HOST_CPUS) {
      return fail(`this host has ${cores} CPU${cores === 1 ? '' : 's'}; a Kubernetes control plane needs at least ${MIN_HOST_CPUS}`, { related: ['kubernetes/minikube#7905'] });
    }
    if (wanted > cores) {
      return fail(`${wanted} CPUs requested but this host has ${cores}`, {
        fix: { description: 'Ask for no more CPUs than the host has.', commands: [{ shell: 'sh', run: `devcluster config set cpus ${cores}`, elevated: false }] },
      });
    }
    return pass(`${cores} CPUs, ${wanted} for the VM`);
  },
};

const memoryCheck: Check = {
  id: 'HOST_MEMORY_LOW',
  title: 'Memory',
  category: 'host',
  looksAt: "total and available memory against the memory setting",
  fatal: true,
  exitCode: 23,
  async run(ctx) {
    const wanted = Number(settingOf(ctx, 'memory', 4096));
    const total = ctx.host.totalMemoryMiB;
    const available = Math.floor(freemem() / 1024 / 1024);
    ctx.evidence({ command: 'os.totalmem(), os.freemem()', stdout: `total ${total} MiB, available ${available} MiB` });
    const advised = Math.max(1024, Math.floor(Math.min(total / 2, available) / 512) * 512);
    if (wanted > total) {
      return fail(`${mib(wanted)} requested for the VM but this host has ${mib(total)}`, {
        fix: { description: 'Give the VM less memory than the host has, leaving room for the host itself.', commands: [{ shell: 'sh', run: `devcluster config set memory ${advised}`, elevated: false }] },
        related: ['kubernetes/minikube#1766'],
      });
    }
    if (wanted > available) {
      return warn(`${mib(wanted)} requested for the VM but only ${mib(available)} is available now; the host will swap`, {
        details: [`Total memory: ${mib(total)}.`],
        fix: { description: 'Close memory-hungry applications, or give the VM less memory.', commands: [{ shell: 'sh', run: `devcluster config set memory ${advised}`, elevated: false }] },
      });
    }
    return pass(`${mib(available)} available of ${mib(total)}; ${mib(wanted)} for the VM`);
  },
};

/** The nearest existing directory at or above `path` (the home may not exist yet). */
async function existingAncestor(path: string): Promise<string> {
  let p = path;
  for (;;) {
    try {
      await access(p, constants.F_OK);
      return p;
    } catch {
      const parent = dirname(p);
      if (parent === p) return p;
      p = parent;
    }
  }
}

const diskCheck: Check = {
  id: 'HOST_DISK_LOW',
  title: 'Disk space',
  category: 'host',
  looksAt: "free space (statfs) on the filesystem holding $DEVCLUSTER_HOME, against a minimum and the disk-size setting",
  fatal: true,
  exitCode: 26,
  async run(ctx) {
    const dir = await existingAncestor(ctx.home);
    const st = await statfs(dir);
    const free = Math.floor((Number(st.bavail) * Number(st.bsize)) / 1024 / 1024);
    ctx.evidence({ command: `statfs ${dir}`, stdout: `bsize ${st.bsize}, blocks ${st.blocks}, bavail ${st.bavail} (${free} MiB free)` });
    const min = ctx.thresholds.minFreeDiskMiB;
    const disk = Number(settingOf(ctx, 'disk-size', 20480));
    const where = dir === ctx.home ? ctx.home : `${dir} (for ${ctx.home})`;
    if (free < min) {
      return fail(`${mib(free)} free on ${where}; devcluster needs at least ${mib(min)} for images, binaries and the VM disk`, {
        fix: { description: 'Free space on that filesystem, or set DEVCLUSTER_HOME to a directory on a larger one.', commands: [] },
        related: ['kubernetes/minikube#10482'],
      });
    }
    if (free < min + disk) {
      const fits = Math.floor((free - min) / 1024);
      return warn(`${mib(free)} free on ${where}; the VM disk may grow to ${mib(disk)} and fill it`, {
        ...(fits >= 4 ? { fix: { description: 'Ask for a VM disk that fits, or free space on that filesystem.', commands: [{ shell: 'sh', run: `devcluster config set disk-size ${fits}g`, elevated: false }] } } : {}),
      });
    }
    return pass(`${mib(free)} free on ${where}`);
  },
};

const configCheck: Check = {
  id: 'CONFIG_FILES_INVALID',
  title: 'Configuration',
  category: 'host',
  looksAt: 'that the global and profile config files parse and hold valid settings',
  exitCode: 18,
  async run(ctx) {
    if (ctx.configProblem !== undefined) {
      return fail(ctx.configProblem, {
        details: ['The doctor used the default settings for the other checks.'],
        fix: { description: 'Correct the value in the file named above, or remove the key with the config unset command.', commands: [] },
      });
    }
    const sources = Object.values(ctx.config.settings).filter((s) => s.source !== 'default').map((s) => `${s.key} from ${s.origin}`);
    return pass(`profile ${ctx.profile}`, sources);
  },
};

/** Guest time minus host time, from one `date +%s.%N` over SSH measured against the midpoint of the call. */
export function clockSkewSeconds(guestOutput: string, hostBeforeMs: number, hostAfterMs: number): number {
  const guest = Number(guestOutput.trim());
  if (!Number.isFinite(guest)) throw new Error(`unexpected output from date: ${JSON.stringify(guestOutput.trim())}`);
  return guest - (hostBeforeMs + hostAfterMs) / 2000;
}

export function noClusterReason(ctx: DoctorContext): string | undefined {
  if (!ctx.cluster.exists) return `no cluster for profile ${ctx.profile}`;
  if (!ctx.cluster.running) return `the cluster of profile ${ctx.profile} is not running${ctx.cluster.state === undefined ? '' : ` (${ctx.cluster.state})`}`;
  return undefined;
}

/** Why the Kubernetes checks do not apply: the profile's VM was created without Kubernetes. */
export function withoutKubernetes(ctx: DoctorContext): string | undefined {
  return ctx.cluster.kubernetes === false ? `profile ${ctx.profile} was created without Kubernetes` : undefined;
}

export function noGuestReason(ctx: DoctorContext): string | undefined {
  if (noClusterReason(ctx) !== undefined) return noClusterReason(ctx);
  if (ctx.guest !== undefined) return undefined;
  return ctx.guestProblem === undefined ? 'no SSH access to the guest is available to the doctor' : `no SSH access to the guest: ${ctx.guestProblem}`;
}

const clockCheck: Check = {
  id: 'HOST_CLOCK_SKEW',
  title: 'Clock',
  category: 'host',
  looksAt: "the guest's clock (date over SSH) against the host's, when a cluster runs",
  exitCode: 38,
  timeoutMs: 20_000,
  async run(ctx) {
    const reason = noGuestReason(ctx);
    if (reason !== undefined || ctx.guest === undefined) return skip(reason ?? 'no guest');
    const guest = ctx.guest;
    const before = ctx.now();
    let out;
    try {
      out = await guest.exec(['date', '+%s.%N'], { timeoutMs: 10_000, signal: ctx.signal });
    } catch (e) {
      return skip(`cannot read the guest clock: ${errorText(e)}`);
    }
    const after = ctx.now();
    ctx.evidence({ command: `ssh ${guest.target} date +%s.%N`, exitCode: out.exitCode, stdout: out.stdout, stderr: out.stderr });
    const skew = clockSkewSeconds(out.stdout, before, after);
    const text = `${Math.abs(skew).toFixed(1)}s ${skew >= 0 ? 'ahead of' : 'behind'} the host`;
    if (Math.abs(skew) > ctx.thresholds.maxClockSkewSeconds) {
      return warn(`the guest clock is ${text}; certificates and tokens fail when clocks disagree`, {
        fix: {
          description: "Set the guest's clock from the host's; it falls behind when the host sleeps or hibernates.",
          commands: [],
          apply: async (c) => {
            const epoch = (c.now() / 1000).toFixed(3);
            const r = await guest.exec(['sudo', '-n', 'date', '-u', '-s', `@${epoch}`], { timeoutMs: 10_000, signal: c.signal });
            if (r.exitCode !== 0) throw new Error(`setting the guest clock failed: ${r.stderr.trim()}`);
          },
        },
        related: ['kubernetes/minikube#1378', 'kubernetes/minikube#4263'],
      });
    }
    return pass(`the guest clock is ${text}`);
  },
};

export const HOST_CHECKS: readonly Check[] = [osCheck, archCheck, virtCheck, cpuCheck, memoryCheck, diskCheck, configCheck, clockCheck];

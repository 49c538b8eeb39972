import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { settingOf } from '../../src/doctor/context.ts';
import { errorText, fail, pass, skip, warn } from '../../src/doctor/outcome.ts';
import type { Check, CheckContext, CheckOutcome, FixCommand } from '../../src/doctor/types.ts';
import { WINDOWS_QUERIES } from '../../src/doctor/windows-queries.ts';
import { ANY_EXIT_CODE } from '../../src/host/exec.ts';
import { powershellJson } from '../../src/host/powershell.ts';
import { readRegistryValue } from '../../src/host/windows-registry.ts';
import { defaultVmwareHost, findVmrun, productFor, productName, REGISTRY_LOCATIONS, unsupportedArch } from './host.ts';
import type { VmrunSearch, VmwareHost } from './host.ts';
import { describeVmnet8, readVmnet8 } from './network.ts';
import type { Vmnet8 } from './network.ts';
import { isProductMissing, parseVmrunVersion, vmrunArgs, vmrunError } from './vmrun.ts';

/**
 * The VMware driver's doctor checks: vmrun found (and how) with its
 * version, Workstation Pro rather than Player, vmnet8 configured as NAT
 * with its NAT and DHCP services running, and, on Windows, Hyper-V beside
 * Workstation. Each takes the host layout from `hostOf`, so the tests run
 * them on Linux against a scripted vmrun and fixture files.
 */

const PLATFORMS = ['win32', 'linux', 'darwin'] as const;
const QEMU_INSTEAD: FixCommand = { shell: 'sh', run: 'devcluster config set driver qemu', elevated: false };

/** "VMware Workstation 17.5.2 build-23775571" (`vmware -v`) or a registry ProductVersion "17.5.2.23775571". */
export function parseProductVersion(text: string): string | undefined {
  return /(\d+\.\d+\.\d+)/.exec(text)?.[1];
}

/** Negative, zero or positive as a is older, equal or newer than b ("15.5.5" vs "17.0.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** CFBundleShortVersionString of an app bundle's XML Info.plist ("13.6.2"). */
export function parsePlistVersion(text: string): string | undefined {
  const m = /<key>CFBundleShortVersionString<\/key>\s*<string>([^<]*)<\/string>/.exec(text);
  return m === null ? undefined : parseProductVersion(m[1] as string);
}

/** Workstation runs beside Hyper-V (on the Windows Hypervisor Platform) from this version on. */
export const WHP_MIN_VERSION = '15.5.5';
/** The oldest Workstation whose virtual hardware version (19) the driver writes. */
export const MIN_WORKSTATION_VERSION = '16.2.0';
/** Fusion's release with the same virtual hardware version. */
export const MIN_FUSION_VERSION = '12.2.0';

/**
 * `sc.exe query <service>`: "STATE              : 4  RUNNING". Undefined
 * when the service does not exist (sc prints FAILED 1060 and exits 1060).
 */
export function parseScState(text: string): string | undefined {
  return /^\s*STATE\s*:\s*\d+\s+(\w+)/m.exec(text)?.[1];
}

interface Found {
  search: VmrunSearch;
  version?: string;
  product?: string;
  productVersion?: string;
  problem?: string;
}

export function vmwareChecks(hostOf: (ctx: CheckContext) => VmwareHost): readonly Check[] {
  async function found(ctx: CheckContext): Promise<Found> {
    return ctx.memo('vmware-vmrun', async (c) => {
      const host = hostOf(c);
      const search = await findVmrun(String(settingOf(c, 'vmware-vmrun', 'auto')), host, c.exec);
      c.evidence({ command: `find vmrun: ${search.tried.join(', ')}`, ...(search.found === undefined ? { error: 'not found' } : { stdout: `${search.found.path} (${search.found.source})` }) });
      if (search.found === undefined) return { search };
      try {
        // Without arguments vmrun prints its usage, headed by its version, and exits non-zero.
        const r = await c.exec(search.found.path, [], { timeoutMs: 15_000, parse: true, okExitCodes: ANY_EXIT_CODE });
        const v = parseVmrunVersion(`${r.stdout}\n${r.stderr}`);
        const out: Found = { search, ...(v === undefined ? {} : { version: `${v.version}${v.build === undefined ? '' : ` build-${v.build}`}` }) };
        const product = await productVersion(c, host, search.found.path);
        return { ...out, ...product };
      } catch (e) {
        return { search, problem: errorText(e) };
      }
    });
  }

  /** The product's own version: the registry on Windows, `vmware -v` on Linux, the app bundle's Info.plist on macOS. */
  async function productVersion(c: CheckContext, host: VmwareHost, vmrun: string): Promise<{ product?: string; productVersion?: string }> {
    if (host.platform === 'win32') {
      for (const loc of REGISTRY_LOCATIONS.slice(0, 2)) {
        const v = await readRegistryValue(c.exec, loc.key, 'ProductVersion');
        const version = v === undefined ? undefined : parseProductVersion(v.data);
        if (version !== undefined) return { product: 'VMware Workstation', productVersion: version };
      }
      return {};
    }
    if (host.platform === 'linux') {
      const vmware = vmrun.replace(/vmrun$/, 'vmware');
      const r = await c.exec(vmware, ['-v'], { timeoutMs: 15_000, parse: true, okExitCodes: ANY_EXIT_CODE }).catch(() => undefined);
      const m = r === undefined ? null : /(VMware (?:Workstation|Player)[\w ]*?) (\d+\.\d+\.\d+)/.exec(`${r.stdout}\n${r.stderr}`);
      return m === null ? {} : { product: m[1] as string, productVersion: m[2] as string };
    }
    if (host.platform === 'darwin') {
      // vmrun is <app>/Contents/Library/vmrun (or Contents/Public); the bundle's version is in <app>/Contents/Info.plist.
      const plist = await readFile(join(dirname(vmrun), '..', 'Info.plist'), 'utf8').catch(() => undefined);
      const version = plist === undefined ? undefined : parsePlistVersion(plist);
      return version === undefined ? {} : { product: 'VMware Fusion', productVersion: version };
    }
    return {};
  }

  const installed: Check = {
    id: 'VMWARE_NOT_INSTALLED',
    title: 'VMware',
    category: 'hypervisor',
    looksAt: 'vmrun: the vmware-vmrun setting, else PATH, else (Windows) the install path in the registry (HKLM\\SOFTWARE\\WOW6432Node\\VMware, Inc.\\VMware Workstation, then App Paths\\vmware.exe), else the default install folders; its version from its usage text and the product\'s (registry ProductVersion, `vmware -v`)',
    platforms: PLATFORMS,
    drivers: ['vmware'],
    fatal: true,
    exitCode: 65,
    async run(ctx) {
      const host = hostOf(ctx);
      const name = productName(host.platform);
      const arch = unsupportedArch(host.platform, ctx.host.arch);
      if (arch !== undefined) return fail(arch, { fix: { description: 'Use the QEMU driver, which runs arm64 guests on Apple silicon.', commands: [QEMU_INSTEAD] } });
      const f = await found(ctx);
      if (f.search.found === undefined) {
        return fail(`vmrun was not found (looked at ${f.search.tried.join('; ')})`, {
          details: ['minikube looked only at PATH (or only at the registry) and its users met "vmrun: executable file not found" although VMware was installed.'],
          fix: {
            description: `Install ${name}${host.platform === 'darwin' ? '' : ' Pro (free for every use since 17.6.2)'}; if it is installed elsewhere, add the folder holding vmrun to PATH or point the vmware-vmrun setting at it. Or use the QEMU driver.`,
            commands: [{ shell: host.platform === 'win32' ? 'powershell' : 'sh', run: `devcluster config set vmware-vmrun ${host.platform === 'win32' ? "'C:\\Program Files (x86)\\VMware\\VMware Workstation\\vmrun.exe'" : '/path/to/vmrun'}`, elevated: false }, QEMU_INSTEAD],
          },
          related: ['kubernetes/minikube#11307', 'kubernetes/minikube#18088'],
        });
      }
      if (f.problem !== undefined) return fail(`${f.search.found.path} does not run: ${f.problem}`);
      const text = `${f.search.found.path} (found on ${f.search.found.source})${f.version === undefined ? '' : `, vmrun ${f.version}`}${f.productVersion === undefined ? '' : `, ${f.product ?? name} ${f.productVersion}`}`;
      const minimum = host.platform === 'darwin' ? MIN_FUSION_VERSION : MIN_WORKSTATION_VERSION;
      if (f.productVersion !== undefined && compareVersions(f.productVersion, minimum) < 0) {
        return fail(`${text}: older than ${minimum}`, {
          details: [`The driver writes virtual hardware version 19, which Workstation ${MIN_WORKSTATION_VERSION} and Fusion ${MIN_FUSION_VERSION} introduced.`],
          fix: { description: `Update to ${name} ${host.platform === 'darwin' ? '13.6.2' : '17.6.2'} or later (free).`, commands: [] },
        });
      }
      if (f.version === undefined) return warn(`${text}; vmrun printed no version devcluster can read`);
      return pass(text);
    },
  };

  const product: Check = {
    id: 'VMWARE_WORKSTATION_PRO_MISSING',
    title: 'VMware product',
    category: 'hypervisor',
    looksAt: '`vmrun -T ws list` (Fusion: -T fusion): Workstation Player and old VIX versions refuse -T ws ("The specified version was not found"), and Player cannot run VMs from vmrun',
    platforms: PLATFORMS,
    drivers: ['vmware'],
    requires: ['VMWARE_NOT_INSTALLED'],
    fatal: true,
    exitCode: 69,
    async run(ctx) {
      const host = hostOf(ctx);
      const f = await found(ctx);
      if (f.search.found === undefined) return skip('vmrun is not installed');
      const t = productFor(host.platform);
      const r = await ctx.exec(f.search.found.path, vmrunArgs.list(t), { timeoutMs: 30_000, parse: true, okExitCodes: ANY_EXIT_CODE });
      const said = vmrunError(r.stdout, r.stderr);
      if (r.exitCode === 0) return pass(`vmrun -T ${t} works${f.product === undefined ? '' : ` (${f.product})`}`);
      if (isProductMissing(said) || /Player/i.test(f.product ?? '')) {
        return fail(`vmrun -T ${t} is refused: ${said}`, {
          details: ['VMware Workstation Player (discontinued in 2024) runs VMs only from its window; devcluster drives Workstation Pro or Fusion through vmrun.'],
          fix: { description: 'Install VMware Workstation Pro, free for personal and commercial use since 17.6.2 (it replaces Player).', commands: [] },
          related: ['kubernetes/minikube#7806'],
        });
      }
      return fail(`vmrun -T ${t} list failed: ${said}`);
    },
  };

  async function vmnet8(ctx: CheckContext): Promise<Vmnet8 | undefined> {
    return ctx.memo('vmware-vmnet8', async (c) => {
      const host = hostOf(c);
      const n = await readVmnet8(host);
      c.evidence({ command: `read ${host.networkConfig}`, ...(n === undefined ? { error: 'missing, or no vmnet8 in it' } : { stdout: describeVmnet8(n) }) });
      return n;
    });
  }

  function restoreNetworks(host: VmwareHost): FixCommand[] {
    if (host.platform === 'win32') return [{ shell: 'powershell', run: "& 'C:\\Program Files (x86)\\VMware\\VMware Workstation\\vmnetcfg.exe'", elevated: true }];
    if (host.platform === 'darwin') return [{ shell: 'sh', run: 'sudo "/Applications/VMware Fusion.app/Contents/Library/vmnet-cli" --configure && sudo "/Applications/VMware Fusion.app/Contents/Library/vmnet-cli" --start', elevated: true }];
    return [{ shell: 'sh', run: 'sudo vmware-networks --start', elevated: true }];
  }

  const vmnet8Check: Check = {
    id: 'VMWARE_VMNET8_MISSING',
    title: 'vmnet8 (NAT)',
    category: 'network',
    looksAt: "VMware's network configuration (Linux /etc/vmware/networking, macOS /Library/Preferences/VMware Fusion/networking, Windows %ProgramData%\\VMware\\vmnetnat.conf): vmnet8 present, in NAT mode, with DHCP, and its subnet",
    platforms: PLATFORMS,
    drivers: ['vmware'],
    requires: ['VMWARE_NOT_INSTALLED'],
    fatal: true,
    exitCode: 70,
    async run(ctx) {
      const host = hostOf(ctx);
      const n = await vmnet8(ctx);
      const fix = { description: 'Restore VMware\'s default networks (Virtual Network Editor, "Restore Defaults"; vmnet8 is the NAT network the driver uses).', commands: restoreNetworks(host) };
      if (n === undefined) return fail(`vmnet8 is not configured: ${host.networkConfig} is missing or does not define it`, { fix });
      if (!n.nat) return fail(`vmnet8 is not a NAT network: ${describeVmnet8(n)}`, { fix });
      if (!n.dhcp) {
        return warn(`vmnet8 has no DHCP server: ${describeVmnet8(n)}`, {
          details: ['The guest then gets no address unless VMware Tools report one and a static address is configured.'],
          fix,
        });
      }
      return pass(describeVmnet8(n));
    },
  };

  const natService: Check = {
    id: 'VMWARE_NAT_STOPPED',
    title: 'vmnet8 NAT and DHCP services',
    category: 'network',
    looksAt: 'that the vmnet8 NAT and DHCP services run: Windows `sc.exe query "VMware NAT Service"` and `sc.exe query VMnetDHCP`; Linux and macOS the vmnet-natd and vmnet-dhcpd processes (`pgrep -x`)',
    platforms: PLATFORMS,
    drivers: ['vmware'],
    requires: ['VMWARE_VMNET8_MISSING'],
    exitCode: 71,
    async run(ctx) {
      const host = hostOf(ctx);
      const stopped: string[] = [];
      let unknown: string | undefined;
      if (host.platform === 'win32') {
        for (const service of ['VMware NAT Service', 'VMnetDHCP']) {
          const r = await ctx.exec('sc.exe', ['query', service], { timeoutMs: 10_000, parse: true, okExitCodes: ANY_EXIT_CODE });
          const state = parseScState(r.stdout);
          if (state !== 'RUNNING') stopped.push(`${service} (${state ?? 'not installed'})`);
        }
      } else {
        for (const daemon of ['vmnet-natd', 'vmnet-dhcpd']) {
          const r = await ctx.exec('pgrep', ['-x', daemon], { timeoutMs: 10_000, parse: true, okExitCodes: ANY_EXIT_CODE }).catch((e: unknown) => errorText(e));
          if (typeof r === 'string') unknown = r;
          else if (r.exitCode === 1) stopped.push(daemon);
          else if (r.exitCode !== 0) unknown = `pgrep exited with code ${r.exitCode}`;
        }
      }
      if (stopped.length > 0) {
        const start: FixCommand[] =
          host.platform === 'win32'
            ? [{ shell: 'powershell', run: "Start-Service -Name 'VMware NAT Service', 'VMnetDHCP'", elevated: true }]
            : restoreNetworks(host);
        const outcome: CheckOutcome = (host.platform === 'darwin' ? warn : fail)(`not running: ${stopped.join(', ')}`, {
          details: [
            'Without them the VM gets no DHCP lease on vmnet8 and cannot reach the internet.',
            ...(host.platform === 'darwin' ? ['Fusion 12.0 and 12.1 on macOS 11 use macOS\'s own vmnet instead of these daemons: there, their absence is normal.'] : []),
          ],
          fix: { description: 'Start VMware\'s network services.', commands: start, requires: [] },
        });
        return outcome;
      }
      if (unknown !== undefined) return warn(`cannot tell whether VMware's network services run: ${unknown}`);
      return pass(host.platform === 'win32' ? 'VMware NAT Service and VMnetDHCP are running' : 'vmnet-natd and vmnet-dhcpd are running');
    },
  };

  const hyperv: Check = {
    id: 'VMWARE_HYPERV_CONFLICT',
    title: 'Hyper-V beside VMware',
    category: 'host',
    looksAt: `on Windows, whether a hypervisor (Hyper-V, WSL 2, Credential Guard) runs (Win32_ComputerSystem.HypervisorPresent) and whether Workstation is ${WHP_MIN_VERSION} or later, which runs its VMs on the Windows Hypervisor Platform beside it`,
    platforms: ['win32'],
    drivers: ['vmware'],
    // Not after VMWARE_NOT_INSTALLED: a Workstation too old for the driver is also the one Hyper-V stops, and this says why.
    exitCode: 37,
    async run(ctx) {
      const present = await powershellJson<boolean>(ctx.exec, WINDOWS_QUERIES.hypervisorPresent);
      if (present !== true) return pass('no hypervisor runs under Windows: Workstation uses VT-x/AMD-V itself');
      const f = await found(ctx);
      if (f.search.found === undefined) return skip('VMware Workstation is not installed');
      if (f.productVersion === undefined) {
        return warn('Hyper-V (or WSL 2, or Credential Guard) runs, and the Workstation version could not be read', {
          details: [`Workstation ${WHP_MIN_VERSION} and later run beside it on the Windows Hypervisor Platform; older ones refuse to start VMs ("VMware Workstation and Device/Credential Guard are not compatible").`],
        });
      }
      if (compareVersions(f.productVersion, WHP_MIN_VERSION) < 0) {
        return fail(`Hyper-V runs and Workstation ${f.productVersion} is older than ${WHP_MIN_VERSION}: it cannot start VMs beside it`, {
          fix: {
            description: 'Update Workstation (17.6.2 or later is free), or turn the Windows hypervisor off and restart (this stops WSL 2 and Hyper-V VMs); or use the Hyper-V driver.',
            commands: [{ shell: 'powershell', run: 'bcdedit /set hypervisorlaunchtype off', elevated: true }],
            requires: ['reboot'],
          },
        });
      }
      return pass(`Hyper-V runs; Workstation ${f.productVersion} runs its VMs on the Windows Hypervisor Platform beside it (slower than on its own)`);
    },
  };

  return [installed, product, hyperv, vmnet8Check, natService];
}

export const VMWARE_CHECKS: readonly Check[] = vmwareChecks((ctx) => defaultVmwareHost(ctx.host.platform, ctx.env));

import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Availability, CrashReport, Driver, DriverContext, GuestAddress, HostContext, NetworkPlan, StopOptions, VmDetails, VmSpec, VmState } from '../driver.ts';
import { driverDataStore } from '../driver-data.ts';
import { ANY_EXIT_CODE, run, tail } from '../../src/host/exec.ts';
import { formatMac } from '../../src/host/dhcpd-leases.ts';
import { formatCidr, intToIpv4 } from '../../src/host/ipv4.ts';
import { writeFileAtomic } from '../../src/profile/atomic.ts';
import { DevclusterError, isDevclusterError } from '../../src/ui/errors.ts';
import { defaultVmwareHost, findVdiskManager, findVmrun, leaseFilesFor, productFor, productName, unsupportedArch } from './host.ts';
import type { Exec, VmwareHost } from './host.ts';
import { findVmnetLease, inVmnet8, readVmnet8 } from './network.ts';
import { deltaDiskBytes, descriptorPathProblem, readSparseDisk } from './vmdk.ts';
import { parseVmx, renderVmx, vmxEntries } from './vmx.ts';
import type { Firmware } from './vmx.ts';
import { isProductMissing, isToolsMissing, parseGuestIp, parseVmrunList, sameVmxPath, vmrunArgs, vmrunError } from './vmrun.ts';
import './errors.ts';

/** Workstation 16.2 / Fusion 12.2 and later: the oldest hardware version with the guest types used here. */
export const VIRTUAL_HW_VERSION = 19;
const NETWORK_MODE = 'nat';
const MIB = 1024 * 1024;

/** How each image family is described to VMware; the first match wins. */
const GUESTS: ReadonlyArray<{ image: RegExp; guestOS: string; firmware: Firmware }> = [
  // Photon's image boots under BIOS and UEFI alike (bootmode dualboot); BIOS matches its OVA.
  { image: /^photon/i, guestOS: 'vmware-photon-64', firmware: 'bios' },
  { image: /.*/, guestOS: 'other5xlinux-64', firmware: 'bios' },
];

export function guestFor(imageName: string | undefined): { guestOS: string; firmware: Firmware } {
  const g = GUESTS.find((x) => x.image.test(imageName ?? '')) ?? (GUESTS.at(-1) as (typeof GUESTS)[number]);
  return { guestOS: g.guestOS, firmware: g.firmware };
}

/** A MAC in VMware's range for static addresses, 00:50:56:00:00:00-00:50:56:3f:ff:ff. */
export function randomStaticMac(bytes: Uint8Array = randomBytes(3)): string {
  return formatMac(Uint8Array.from([0x00, 0x50, 0x56, (bytes[0] ?? 0) & 0x3f, bytes[1] ?? 0, bytes[2] ?? 0]));
}

export function isVmwareStaticMac(mac: string): boolean {
  return /^00:50:56:[0-3][0-9a-f](:[0-9a-f]{2}){2}$/i.test(mac);
}

/** What the VMware driver keeps in the profile's state between commands. */
interface VmwareData {
  mac?: string;
  vmx?: string;
  disk?: string;
  /** The base the disk is a child of: shared, in the image's cache entry, never deleted by a profile. */
  base?: string;
  guestIp?: string;
}

const vmwareData = driverDataStore<VmwareData>('vmware', () => ({}));
const data = (ctx: DriverContext): VmwareData => vmwareData.peek(ctx) ?? {};
const saveData = vmwareData.update;

function files(ctx: DriverContext) {
  const vmDir = join(ctx.paths.dir, 'vm');
  return {
    vmDir,
    vmx: join(vmDir, `devcluster-${ctx.profile}.vmx`),
    disk: join(vmDir, 'disk.vmdk'),
    vmwareLog: join(vmDir, 'vmware.log'),
    serialLog: ctx.paths.serialLog,
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function fileTail(path: string, lines: number): Promise<string> {
  return tail(await readFile(path, 'utf8').catch(() => ''), lines);
}

/**
 * Puts a finished file at `dest` unless another process got there first: a
 * base that children already name must never be replaced, since its new
 * content ID would break them. A hard link fails when `dest` exists; a file
 * system without hard links falls back to a rename after a last look.
 */
async function publishOnce(tmp: string, dest: string): Promise<void> {
  try {
    await link(tmp, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'ENOSYS') throw e;
    if (!(await exists(dest))) await rename(tmp, dest);
  }
}

/**
 * The base VMware reads for an image at a disk size: the cached VMDK
 * converted to monolithicSparse, grown to the size. It lives in the image's
 * cache entry, so it goes with the image; in a dot-folder, because the
 * cache takes an entry's one visible file as the image itself.
 */
export function basePath(imageDisk: string, diskMiB: number): string {
  return join(dirname(imageDisk), '.vmware', `base-${diskMiB}m.vmdk`);
}

/**
 * The driver over one host (or, in tests, a scripted vmrun). The VM is a
 * generated .vmx in the profile's vm/ folder, with a disk that is a child
 * of the cached base; vmrun starts and stops it; the address comes from
 * VMware Tools in the guest, else from vmnet8's DHCP leases for the VM's
 * static MAC.
 */
export function createVmwareDriver(host: VmwareHost, exec: Exec = run): Driver {
  const product = productFor(host.platform);
  const productLabel = productName(host.platform);

  async function vmrunPath(ctx: { settings: Readonly<Record<string, unknown>> }): Promise<string> {
    const setting = String(ctx.settings['vmware-vmrun'] ?? 'auto');
    const search = await findVmrun(setting, host, exec);
    if (search.found === undefined) {
      throw new DevclusterError('VMWARE_NOT_FOUND', `vmrun was not found (looked at ${search.tried.join('; ')})`, {
        advice: `Install ${productLabel}${host.platform === 'darwin' ? '' : ' Pro (free since 17.6.2)'}, add the folder holding vmrun to PATH, or set its path: devcluster config set vmware-vmrun <path>.`,
      });
    }
    return search.found.path;
  }

  async function vmrun(ctx: { settings: Readonly<Record<string, unknown>>; signal?: AbortSignal }, args: string[], timeoutMs = 60_000) {
    const path = await vmrunPath(ctx);
    return exec(path, args, { timeoutMs, parse: true, okExitCodes: ANY_EXIT_CODE, ...(ctx.signal === undefined ? {} : { signal: ctx.signal }) });
  }

  function failed(what: string, r: { stdout: string; stderr: string; exitCode: number }, advice: string, details?: Record<string, unknown>): DevclusterError {
    const said = vmrunError(r.stdout, r.stderr);
    if (isProductMissing(said)) {
      return new DevclusterError('VMWARE_PRODUCT_UNSUPPORTED', `vmrun -T ${product} ${what}: ${said}`, {
        advice: 'This vmrun belongs to VMware Workstation Player or an older VIX: install Workstation Pro (free for every use since 17.6.2). `devcluster doctor --driver vmware` checks it.',
      });
    }
    return new DevclusterError('VMWARE_VMRUN_FAILED', `vmrun ${what} failed (exit ${r.exitCode}): ${said}`, { advice, ...(details === undefined ? {} : { details }) });
  }

  async function runningVms(ctx: { settings: Readonly<Record<string, unknown>>; signal?: AbortSignal }): Promise<string[]> {
    const r = await vmrun(ctx, vmrunArgs.list(product), 30_000);
    if (r.exitCode !== 0) throw failed('list', r, 'Run `devcluster doctor --driver vmware`.');
    return parseVmrunList(r.stdout).vmx;
  }

  async function isRunning(ctx: DriverContext): Promise<boolean> {
    const vmx = files(ctx).vmx;
    // vmrun may print the resolved path (macOS's /var is /private/var), so both spellings count.
    const real = await realpath(vmx).catch(() => vmx);
    return (await runningVms(ctx)).some((p) => sameVmxPath(p, vmx, host.platform) || sameVmxPath(p, real, host.platform));
  }

  /**
   * The cached image as a base VMware can read and keep as a parent, made
   * once per image and disk size: VMware cannot run on a streamOptimized
   * VMDK (the format images ship in), and a child must have its parent's
   * size. Written under a temporary name and renamed, so a crash or a
   * second profile converting at the same time leaves no half-made base.
   */
  async function ensureBase(ctx: DriverContext, spec: VmSpec): Promise<string> {
    const base = basePath(spec.image.disk, spec.diskMiB);
    if (await exists(base)) return base;
    const vdisk = await findVdiskManager(await vmrunPath(ctx), host);
    if (vdisk === undefined) {
      throw new DevclusterError('VMWARE_NOT_FOUND', `vmware-vdiskmanager was not found beside vmrun or on PATH`, { advice: `Reinstall ${productLabel}: it installs vmware-vdiskmanager with vmrun.` });
    }
    await mkdir(dirname(base), { recursive: true });
    const tmp = join(dirname(base), `.${randomBytes(4).toString('hex')}.converting.vmdk`);
    try {
      ctx.report(`converting the image for VMware (once per image and disk size): ${base}`);
      const steps: string[][] = [['-r', spec.image.disk, '-t', '0', tmp], ['-x', `${spec.diskMiB}MB`, tmp]];
      const source = await readSparseDisk(spec.image.disk);
      // A base already of the requested size needs no growing (vdiskmanager refuses to "grow" to the same size).
      if (source !== undefined && Number(source.header.capacity) * 512 >= spec.diskMiB * MIB) steps.pop();
      for (const args of steps) {
        const r = await exec(vdisk, args, { timeoutMs: 30 * 60_000, parse: true, okExitCodes: ANY_EXIT_CODE, signal: ctx.signal });
        if (r.exitCode !== 0) {
          throw new DevclusterError('VMWARE_DISK_FAILED', `vmware-vdiskmanager ${args[0] ?? ''} failed (exit ${r.exitCode}): ${tail(`${r.stdout}${r.stderr}`.trim(), 1)}`, {
            advice: `Check the free space where the image cache is (${dirname(base)}); \`devcluster image ls\` shows the cached image.`,
          });
        }
      }
      await publishOnce(tmp, base);
    } finally {
      await rm(tmp, { force: true });
    }
    return base;
  }

  async function vmxModel(ctx: DriverContext, spec: VmSpec, mac: string) {
    const f = files(ctx);
    const guest = guestFor(ctx.state.state?.image?.name);
    // VMware powers on only a memsize that is a multiple of 4 MB.
    const memoryMiB = spec.memoryMiB - (spec.memoryMiB % 4);
    if (memoryMiB !== spec.memoryMiB) ctx.report(`VMware needs the memory in multiples of 4 MiB: the VM gets ${memoryMiB} MiB, not ${spec.memoryMiB}`, 'warn');
    return vmxEntries({
      displayName: `devcluster-${ctx.profile}`,
      guestOS: guest.guestOS,
      firmware: guest.firmware,
      virtualHwVersion: VIRTUAL_HW_VERSION,
      cpus: spec.cpus,
      memoryMiB,
      mac,
      disk: 'disk.vmdk',
      cdroms: [spec.seedIso, ...spec.dataIsos],
      serialLog: f.serialLog,
    });
  }

  const driver: Driver = {
    info: {
      name: 'vmware',
      displayName: 'VMware Workstation / Fusion',
      platforms: ['win32', 'linux', 'darwin'],
      features: {
        networkModes: {
          [NETWORK_MODE]: { description: 'vmnet8, VMware\'s NAT network; the address from VMware Tools or vmnet8\'s DHCP leases; no elevation', address: 'hypervisor-api', elevation: {} },
        },
        // The driver chooses a static MAC in VMware's range before anything is created.
        macKnown: 'plan',
        directKernelBoot: false,
        diskFormats: ['vmdk'],
        registersBaseMedia: false,
      },
    },

    async available(ctx: HostContext): Promise<Availability> {
      if (!['win32', 'linux', 'darwin'].includes(ctx.platform)) return { status: 'unavailable', reason: `VMware runs on Windows, Linux and macOS; this is ${ctx.platform}` };
      const arch = unsupportedArch(host.platform, host.arch);
      if (arch !== undefined) return { status: 'unavailable', reason: arch, fix: 'Use --driver=qemu, which runs arm64 guests on Apple silicon.' };
      const setting = String(ctx.settings['vmware-vmrun'] ?? 'auto');
      const search = await findVmrun(setting, host, exec);
      if (search.found === undefined) {
        return {
          status: 'unavailable',
          reason: `${productLabel} is not installed: vmrun was not found (looked at ${search.tried.join('; ')})`,
          fix: `Install ${productLabel}${host.platform === 'darwin' ? '' : ' Pro (free since 17.6.2)'}, or set the vmware-vmrun setting to vmrun's path; or use --driver=qemu.`,
        };
      }
      const r = await exec(search.found.path, vmrunArgs.list(product), { timeoutMs: 30_000, parse: true, okExitCodes: ANY_EXIT_CODE }).catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
      if (typeof r === 'string') return { status: 'unavailable', reason: `${search.found.path} does not run: ${r}` };
      const said = vmrunError(r.stdout, r.stderr);
      if (r.exitCode !== 0) {
        return isProductMissing(said)
          ? { status: 'unavailable', reason: `vmrun -T ${product} is refused (${said}): this is VMware Workstation Player or an older VIX`, fix: 'Install VMware Workstation Pro (free since 17.6.2).' }
          : { status: 'unavailable', reason: `vmrun -T ${product} list failed: ${said}`, fix: 'Run `devcluster doctor --driver vmware`.' };
      }
      return { status: 'available', detail: `${search.found.path} (${search.found.source})` };
    },

    async ensureNetwork(ctx): Promise<NetworkPlan> {
      // vmnet8 is made by VMware's installer and shared by every NAT VM: nothing to create, only a MAC to choose.
      let mac = data(ctx).mac;
      if (mac === undefined) {
        mac = randomStaticMac();
        const chosen = mac;
        await saveData(ctx, (d) => {
          d.mac = chosen;
        });
      }
      const vmnet8 = await readVmnet8(host);
      const subnet = vmnet8?.subnet;
      return {
        mode: NETWORK_MODE,
        mac,
        guestAddress: { kind: 'dhcp' },
        dns: [],
        ...(subnet === undefined ? {} : { subnet: formatCidr(subnet), gateway: intToIpv4(subnet.base + 2) }),
      };
    },

    async create(ctx, spec: VmSpec) {
      const f = files(ctx);
      if (spec.image.format !== 'vmdk') {
        throw new DevclusterError('VMWARE_IMAGE_UNSUITABLE', `VMware boots a VMDK disk; the image gives ${spec.image.format}`, { advice: 'Use --image photon-5 (it ships a VMDK), or another driver for this image: --driver=qemu.', input: true });
      }
      const source = await readSparseDisk(spec.image.disk).catch(() => undefined);
      if (source === undefined) {
        throw new DevclusterError('VMWARE_IMAGE_UNSUITABLE', `${spec.image.disk} is not a sparse VMDK (monolithicSparse or streamOptimized)`, { advice: 'Use --image photon-5, whose VMDK is streamOptimized.', input: true });
      }
      const baseMiB = Math.ceil((Number(source.header.capacity) * 512) / MIB);
      if (spec.diskMiB < baseMiB) {
        throw new DevclusterError('VMWARE_DISK_TOO_SMALL', `disk-size ${spec.diskMiB}MiB is smaller than the image (${baseMiB}MiB)`, { advice: `Use --disk-size ${Math.ceil(baseMiB / 1024)}g or more.`, input: true });
      }
      const base = basePath(spec.image.disk, spec.diskMiB);
      // The child names its parent by full path; itself only by its base name ("disk.vmdk").
      const problem = descriptorPathProblem(base);
      if (problem !== undefined) throw new DevclusterError('VMWARE_PATH_UNSUPPORTED', `${base} cannot be named in a VMDK descriptor: ${problem}`, { advice: 'Use a DEVCLUSTER_HOME whose path has no double quote or control character.', input: true });
      const mac = data(ctx).mac ?? randomStaticMac();
      await saveData(ctx, (d) => {
        d.mac = mac;
      });

      await ctx.state.record('dir', f.vmDir);
      await mkdir(f.vmDir, { recursive: true });
      await mkdir(dirname(f.serialLog), { recursive: true });
      if (!(await exists(f.disk))) {
        const parent = await ensureBase(ctx, spec);
        const disk = await readSparseDisk(parent);
        if (disk === undefined) throw new DevclusterError('VMWARE_DISK_FAILED', `${parent} is not a sparse VMDK after conversion`, { advice: `Remove ${parent} and start again.` });
        await writeFileAtomic(f.disk, deltaDiskBytes({ path: f.disk, parent: { path: parent, disk }, virtualHwVersion: VIRTUAL_HW_VERSION }));
        await saveData(ctx, (d) => {
          d.base = parent;
          d.disk = f.disk;
        });
      }
      // VMware adds its own keys to a .vmx once the VM ran; an existing one is left as VMware keeps it.
      if (!(await exists(f.vmx))) {
        await ctx.state.record('vm', f.vmx);
        await writeFileAtomic(f.vmx, renderVmx(await vmxModel(ctx, spec, mac)));
      }
      await saveData(ctx, (d) => {
        d.vmx = f.vmx;
      });
    },

    async start(ctx) {
      const f = files(ctx);
      if (!(await exists(f.vmx))) throw new Error('vmware: start before create');
      if (await isRunning(ctx)) return;
      const r = await vmrun(ctx, vmrunArgs.start(product, f.vmx), 180_000);
      if (r.exitCode !== 0) {
        const log = await fileTail(f.vmwareLog, 10);
        throw failed('start', r, `VMware's own log is ${f.vmwareLog}. On Windows, Hyper-V, WSL 2 or Credential Guard must run with Workstation 15.5.5 or later; \`devcluster doctor --driver vmware\` checks the host.`, log === '' ? undefined : { vmwareLog: log });
      }
    },

    async resume(ctx) {
      // vmrun start continues a suspended VM from its saved memory.
      await driver.start(ctx);
    },

    async stop(ctx, options: StopOptions) {
      const f = files(ctx);
      if (!(await exists(f.vmx)) || !(await isRunning(ctx))) return;
      // A soft stop asks VMware Tools in the guest to shut down; without Tools it fails at once.
      const deadline = Date.now() + options.timeoutMs;
      const soft = await vmrun(ctx, vmrunArgs.stop(product, f.vmx, 'soft'), Math.max(1000, options.timeoutMs)).catch((e: unknown) => {
        if (isDevclusterError(e) && e.id === 'HOST_COMMAND_TIMEOUT') return undefined;
        throw e;
      });
      if (soft !== undefined && soft.exitCode === 0) {
        // vmrun may answer once the guest accepted the shutdown, before VMware powered it off.
        for (;;) {
          if (!(await isRunning(ctx))) return;
          if (Date.now() >= deadline) break;
          await sleep(Math.min(1000, Math.max(0, deadline - Date.now())), undefined, { signal: ctx.signal });
        }
      }
      const why = soft === undefined || soft.exitCode === 0 ? `the guest did not shut down within ${Math.round(options.timeoutMs / 1000)}s` : `a soft stop failed: ${vmrunError(soft.stdout, soft.stderr)}`;
      ctx.report(`${why}; powering the VM off`, 'warn');
      await driver.kill(ctx);
    },

    async kill(ctx) {
      const f = files(ctx);
      if (!(await exists(f.vmx)) || !(await isRunning(ctx))) return;
      const r = await vmrun(ctx, vmrunArgs.stop(product, f.vmx, 'hard'), 60_000);
      if (await isRunning(ctx)) {
        throw new DevclusterError('VMWARE_STOP_TIMEOUT', `the VM is still running after \`vmrun stop hard\`${r.exitCode === 0 ? '' : `: ${vmrunError(r.stdout, r.stderr)}`}`, { advice: `Power it off in ${productLabel}, then run the command again.` });
      }
    },

    async delete(ctx) {
      const f = files(ctx);
      if (await exists(f.vmx)) {
        const vmrunFound = (await findVmrun(String(ctx.settings['vmware-vmrun'] ?? 'auto'), host, exec)).found !== undefined;
        if (vmrunFound) {
          await driver.kill(ctx);
          // deleteVM removes the files a .vmx names; this one names no disk or CD-ROM, so the shared base and ISOs are never touched.
          const kept = [...parseVmx(await readFile(f.vmx, 'utf8'))].filter(([k]) => !/^(scsi|sata|ide|nvme)\d+:\d+\./.test(k));
          let stripped: string | undefined;
          try {
            stripped = renderVmx(kept);
          } catch (e) {
            ctx.report(`the .vmx cannot be rewritten without its disks (${e instanceof Error ? e.message : String(e)}): removing the VM's files without vmrun deleteVM`, 'warn');
          }
          if (stripped !== undefined) {
            await writeFileAtomic(f.vmx, stripped);
            // A snapshot taken in VMware's window lists disk.vmdk (whose parent is the shared base) in the .vmsd: deleteVM must not see it either.
            for (const name of await readdir(f.vmDir).catch(() => [] as string[])) if (/\.vmsd$/i.test(name)) await rm(join(f.vmDir, name), { force: true });
            const r = await vmrun(ctx, vmrunArgs.deleteVM(product, f.vmx), 120_000);
            if (r.exitCode !== 0) ctx.report(`vmrun deleteVM: ${vmrunError(r.stdout, r.stderr)}; removing the VM's files directly`, 'warn');
          }
        } else {
          ctx.report(`vmrun is not installed any more: removing the VM's files (${f.vmDir}) without it`, 'warn');
        }
      }
      // Only what this profile recorded: its own VM folder. The base in the image cache belongs to the image.
      if (ctx.state.state === undefined || ctx.state.has('dir', f.vmDir) || ctx.state.has('vm', f.vmx)) await rm(f.vmDir, { recursive: true, force: true });
      if (ctx.state.state !== undefined) {
        await ctx.state.forget('vm', f.vmx);
        await ctx.state.forget('dir', f.vmDir);
        await vmwareData.clear(ctx);
      }
    },

    async state(ctx): Promise<VmState> {
      const f = files(ctx);
      if (!(await exists(f.vmx))) return 'absent';
      let running: boolean;
      try {
        running = await isRunning(ctx);
      } catch (e) {
        if (isDevclusterError(e) && e.id === 'VMWARE_NOT_FOUND') return 'broken';
        throw e;
      }
      if (running) return 'running';
      // A suspended VM keeps its memory in a .vmss beside the .vmx and is not in `vmrun list`.
      const saved = (await readdir(f.vmDir).catch(() => [] as string[])).some((n) => n.endsWith('.vmss'));
      return saved ? 'saved' : 'stopped';
    },

    async address(ctx, wait): Promise<GuestAddress> {
      const f = files(ctx);
      const mac = data(ctx).mac;
      if (mac === undefined) throw new Error('vmware: address before create');
      const vmnet8 = await readVmnet8(host);
      const leaseFiles = await leaseFilesFor(host, exec);
      const started = Date.now();
      const unreadable = new Map<string, string>();
      let toolsSaid: string;
      const found = async (ip: string, source: GuestAddress['source']): Promise<GuestAddress> => {
        if (ip !== data(ctx).guestIp) {
          await saveData(ctx, (d) => {
            d.guestIp = ip;
          });
        }
        return { ip, source };
      };
      for (;;) {
        ctx.signal.throwIfAborted();
        const remaining = wait.deadline - Date.now();
        // Tools report the address about 30 s after they start; -wait blocks until then, bounded by the deadline.
        const tools = await vmrun(ctx, vmrunArgs.getGuestIPAddress(product, f.vmx), Math.min(Math.max(remaining, 1000), 20_000)).catch((e: unknown) => {
          if (isDevclusterError(e) && e.id === 'HOST_COMMAND_TIMEOUT') return undefined;
          throw e;
        });
        if (tools !== undefined) {
          const ip = tools.exitCode === 0 ? parseGuestIp(tools.stdout) : undefined;
          if (ip !== undefined && inVmnet8(vmnet8, ip)) return found(ip, 'hypervisor-api');
          toolsSaid = tools.exitCode === 0 ? `VMware Tools reported ${tools.stdout.trim() || 'nothing'}, not an address on vmnet8` : vmrunError(tools.stdout, tools.stderr);
          if (tools.exitCode !== 0 && !isToolsMissing(toolsSaid) && !(await isRunning(ctx))) {
            throw new DevclusterError('VMWARE_NO_ADDRESS', `the VM stopped before it had an address: ${toolsSaid}`, { advice: `VMware's log is ${f.vmwareLog} and the guest's console ${f.serialLog}.` });
          }
        } else {
          toolsSaid = 'VMware Tools reported no address yet';
        }
        const lease = await findVmnetLease(leaseFiles, mac, Date.now(), (file, why) => unreadable.set(file, why));
        if (lease !== undefined && inVmnet8(vmnet8, lease.ip)) return found(lease.ip, 'dhcp-leases');
        if (Date.now() >= wait.deadline) break;
        wait.onProgress?.(`waiting for the guest's address (${toolsSaid}; no DHCP lease for ${mac} yet; ${Math.round((Date.now() - started) / 1000)}s)`);
        await sleep(Math.min(2000, Math.max(0, wait.deadline - Date.now())), undefined, { signal: ctx.signal }).catch(() => undefined);
      }
      const tried = leaseFiles.map((l) => `${l.path}${unreadable.has(l.path) ? ` (unreadable: ${unreadable.get(l.path) ?? ''})` : ''}`).join(', ');
      throw new DevclusterError('VMWARE_NO_ADDRESS', `no address for the VM (MAC ${mac}) after ${Math.round((Date.now() - started) / 1000)}s: ${toolsSaid}, and no DHCP lease in ${tried}`, {
        advice: [
          'The usual causes:',
          '    - vmnet8\'s NAT or DHCP service is stopped (`devcluster doctor --driver vmware` checks it; Virtual Network Editor, "Restore Defaults", restarts them)',
          '    - the guest has no open-vm-tools and its network did not come up: read the guest\'s console in the profile\'s logs/serial.log',
          `    - a VPN or firewall takes vmnet8's subnet${vmnet8?.subnet === undefined ? '' : ` (${formatCidr(vmnet8.subnet)})`}`,
        ].join('\n'),
      });
    },

    async details(ctx): Promise<VmDetails> {
      // VMware has no software-emulation fallback: a VM that runs, runs on VT-x/AMD-V (or on the Windows Hypervisor Platform).
      const running = (await exists(files(ctx).vmx)) && (await isRunning(ctx).catch(() => false));
      return running ? { acceleration: { accelerator: 'vmware', hardware: true, reason: `${productLabel} runs the VM with the CPU's virtualization` } } : {};
    },

    async crashReport(ctx): Promise<CrashReport> {
      const f = files(ctx);
      const running = await isRunning(ctx).catch(() => false);
      const log = [await fileTail(f.vmwareLog, 15), await fileTail(f.serialLog, 10)].filter((t) => t !== '').join('\n--- the guest\'s console (logs/serial.log) ---\n');
      return { cause: running ? 'the VM runs but the guest does not answer' : '`vmrun list` does not list the VM: it powered off or VMware stopped it', ...(log === '' ? {} : { log }) };
    },
  };
  return driver;
}

export const vmwareDriver: Driver = createVmwareDriver(defaultVmwareHost());

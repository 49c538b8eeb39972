import { mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Availability, CrashReport, Driver, DriverContext, GuestAddress, HostContext, NetworkPlan, StopOptions, VmDetails, VmSpec, VmState } from '../driver.ts';
import { driverDataStore } from '../driver-data.ts';
import { tail } from '../../src/host/exec.ts';
import { readTextIfExists } from '../../src/host/read-if-exists.ts';
import { provedOurs, spawnDetached } from '../../src/host/process.ts';
import { PowerShellError } from '../../src/host/powershell.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { ensureHypervNetwork, hypervMac, modeFromSettings, networkRecorded, planOf, releaseHypervNetwork } from './network.ts';
import type { NetworkData, NetworkDeps } from './network.ts';
import { firstUsableIpv4, parseVms, records, stringList } from './output.ts';
import type { VmInfo } from './output.ts';
import { missingRight, parsePresence, parseRights, hypervPresenceScript, rightsScript } from './rights.ts';
import type { Rights } from './rights.ts';
import { createRunner } from './runner.ts';
import type { HypervHost, Runner } from './runner.ts';
import { createDiskScript, createVmScript, findOwnVmScript, removeVmScript, resumeVmScript, shutdownVmScript, startVmScript, turnOffVmScript, vmAddressScript, vmStateScript } from './vm-scripts.ts';
import './errors.ts';

export type { HypervHost } from './runner.ts';

/** What the Hyper-V driver keeps in the profile's state between commands. */
interface HypervData {
  network?: NetworkData;
  /** The VM's Id: names are not unique in Hyper-V, Ids are. */
  vmId?: string;
  vmName?: string;
  pipe?: string;
}

export interface HypervDriverOptions extends HypervHost {
  /** How often waits poll Hyper-V (tests shorten it). */
  pollMs?: number;
  /** Whether start runs the serial-port logger (only meaningful on Windows, where the pipe exists). */
  logSerial?: boolean;
  /** How long delete retries removing files Hyper-V still holds. */
  fileRetryMs?: number;
  /** Removes a file or folder (tests inject one that reports EBUSY, as Windows does for a file vmms holds). */
  removePath?: (path: string) => Promise<void>;
}

/** How long the serial logger waits for a VM that is off to come back before it exits. */
const SERIAL_GIVE_UP_MS = 60_000;

const DOCTOR = 'Run `devcluster doctor --driver hyperv` for details.';

const hypervData = driverDataStore<HypervData>('hyperv', () => ({}));
const data = hypervData.get;
const saveData = hypervData.update;

function files(ctx: DriverContext) {
  return {
    /** Hyper-V's own folder for the VM (configuration, runtime state, checkpoints). */
    vmDir: join(ctx.paths.dir, 'hyperv'),
    vhd: join(ctx.paths.disks, 'disk.vhdx'),
  };
}

function vmName(profile: string): string {
  return `devcluster-${profile}`;
}

/**
 * The driver over Hyper-V's PowerShell modules (or, in tests, a scripted
 * double of powershell.exe). The VM is addressed by its Id from creation
 * on; everything the driver creates on the host is recorded before the
 * script that creates it runs.
 */
export function createHypervDriver(options: HypervDriverOptions): Driver {
  const run: Runner = createRunner(options);
  const pollMs = options.pollMs ?? 2000;
  const logSerial = options.logSerial ?? options.platform === 'win32';
  const removePath = options.removePath ?? ((path: string) => rm(path, { recursive: true, force: true }));

  async function rights(signal?: AbortSignal): Promise<Rights> {
    return parseRights(await run(rightsScript(), signal === undefined ? {} : { signal }));
  }

  async function requireRight(needs: 'administrator' | 'vm', what: string): Promise<void> {
    const missing = missingRight(await rights(), needs);
    if (missing === undefined) return;
    throw new DevclusterError('HYPERV_RIGHTS', `${what} needs ${missing === 'administrator' ? 'an elevated Administrator (BUILTIN\\Administrators, S-1-5-32-544, in an elevated token)' : 'Administrator or membership of Hyper-V Administrators (S-1-5-32-578)'}, which this shell does not have`, {
      advice:
        missing === 'administrator'
          ? `Run devcluster from a terminal opened with "Run as administrator". ${DOCTOR}`
          : `Add your account to Hyper-V Administrators (as Administrator: Add-LocalGroupMember -SID 'S-1-5-32-578' -Member "$env:USERDOMAIN\\$env:USERNAME"), then sign out and in. ${DOCTOR}`,
    });
  }

  const networkDeps: NetworkDeps = { run, requireAdministrator: (what) => requireRight('administrator', what) };

  async function vm(ctx: DriverContext): Promise<VmInfo | undefined> {
    const id = ctx.state.state === undefined ? undefined : data(ctx).vmId;
    if (id === undefined) return undefined;
    return parseVms(await run(vmStateScript(id), { signal: ctx.signal }))[0];
  }

  async function requireVm(ctx: DriverContext): Promise<string> {
    const id = data(ctx).vmId;
    if (id === undefined || (await vm(ctx)) === undefined) {
      throw new DevclusterError('HYPERV_VM_GONE', `the Hyper-V VM ${id ?? '(never created)'} of this profile is not registered in Hyper-V`, {
        advice: 'It was removed outside devcluster (Hyper-V Manager or Remove-VM). Run `devcluster delete` and start again.',
      });
    }
    return id;
  }

  /** Polls until the VM is Off (or gone); false when the deadline passes first. */
  async function waitOff(ctx: DriverContext, deadline: number): Promise<boolean> {
    for (;;) {
      const v = await vm(ctx);
      if (v === undefined || v.state === 'stopped') return true;
      if (Date.now() >= deadline) return false;
      ctx.signal.throwIfAborted();
      await sleep(pollMs);
    }
  }

  async function removeWithRetries(path: string, retryMs: number): Promise<void> {
    const deadline = Date.now() + retryMs;
    for (let delay = Math.min(250, Math.max(1, retryMs / 10)); ; delay = Math.min(delay * 2, 4000)) {
      try {
        await removePath(path);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (!['EBUSY', 'EPERM', 'EACCES', 'ENOTEMPTY'].includes(code ?? '') || Date.now() >= deadline) {
          throw new DevclusterError('HYPERV_FILES_IN_USE', `${path} could not be removed (${code ?? (e as Error).message}): Hyper-V still holds it`, {
            advice: 'Close Hyper-V Manager (and any VM Connect window) and run `devcluster delete` again; the VM itself is already removed. If it persists, restart the "Hyper-V Virtual Machine Management" service (vmms) as Administrator.',
          });
        }
        await sleep(delay);
      }
    }
  }

  const driver: Driver = {
    info: {
      name: 'hyperv',
      displayName: 'Hyper-V',
      platforms: ['win32'],
      features: {
        networkModes: {
          winnat: { description: 'devcluster\'s Internal switch with WinNAT and a static guest address (stable across reboots); Administrator once', address: 'static', elevation: { network: 'administrator', create: 'administrator', start: 'hyperv-administrators', stop: 'hyperv-administrators', delete: 'administrator' } },
          ics: { description: 'devcluster\'s Internal switch with Internet Connection Sharing (DHCP in 192.168.137.0/24); Administrator once', address: 'hypervisor-api', elevation: { network: 'administrator', create: 'administrator', start: 'hyperv-administrators', stop: 'hyperv-administrators', delete: 'administrator' } },
          switch: { description: 'an existing virtual switch (--hyperv-virtual-switch; the Default Switch by its Id), address from its DHCP via KVP', address: 'hypervisor-api', elevation: { create: 'hyperv-administrators', start: 'hyperv-administrators', stop: 'hyperv-administrators', delete: 'hyperv-administrators' } },
          external: { description: 'an External switch on a physical adapter (--hyperv-external-adapter), address from the LAN\'s DHCP via KVP', address: 'hypervisor-api', elevation: { network: 'administrator', create: 'administrator', start: 'hyperv-administrators', stop: 'hyperv-administrators', delete: 'administrator' } },
        },
        networkModeSetting: 'hyperv-nat',
        macKnown: 'plan',
        directKernelBoot: false,
        diskFormats: ['vhdx'],
        registersBaseMedia: false,
      },
    },

    networkModeFor: (settings) => modeFromSettings(settings),

    async available(ctx: HostContext): Promise<Availability> {
      if (options.platform !== 'win32' || ctx.platform !== 'win32') {
        return { status: 'unavailable', reason: `Hyper-V runs only on Windows (Pro, Enterprise or Education); this is ${ctx.platform}`, fix: 'Use --driver=qemu, which runs here.' };
      }
      let presence;
      try {
        presence = parsePresence(await run(hypervPresenceScript(), { signal: ctx.signal, timeoutMs: 30_000 }));
      } catch (e) {
        return { status: 'unavailable', reason: `PowerShell could not be run: ${(e as Error).message}`, fix: DOCTOR };
      }
      if (!presence.module) {
        return { status: 'unavailable', reason: 'the Hyper-V PowerShell module is not installed (Hyper-V is off, or this is Windows Home)', fix: 'As Administrator: Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V -All, then reboot.' };
      }
      if (presence.vmmsStatus !== 'Running') {
        return {
          status: 'unavailable',
          reason: presence.vmmsStatus === '' ? 'the Hyper-V Virtual Machine Management service (vmms) does not exist' : `the Hyper-V Virtual Machine Management service (vmms) is ${presence.vmmsStatus}`,
          fix: 'As Administrator: Start-Service vmms (after enabling Hyper-V, reboot first).',
        };
      }
      const r = parseRights(await run(rightsScript(), { signal: ctx.signal }));
      const mode = modeFromSettings(ctx.settings);
      // Administrator is needed once, to create the switch and NAT; afterwards managing the VM is enough.
      const missing = missingRight(r, (await networkRecorded(ctx.home, mode)) ? 'vm' : 'administrator');
      if (missing === undefined) return { status: 'available', detail: r.administrator ? 'Administrator' : 'Hyper-V Administrators' };
      if (missing === 'hyperv-administrators') {
        return { status: 'needs-elevation', elevation: 'hyperv-administrators', reason: 'this account is neither an elevated Administrator nor a member of Hyper-V Administrators (S-1-5-32-578), which managing VMs needs' };
      }
      return {
        status: 'needs-elevation',
        elevation: 'administrator',
        reason: `creating the ${mode === 'external' ? 'External switch' : mode === 'ics' ? 'switch and sharing the connection' : 'switch, the host address and the NetNat'} needs an elevated Administrator (S-1-5-32-544)${r.hypervAdministrators ? '; Hyper-V Administrators is enough only with --hyperv-virtual-switch' : ''}`,
      };
    },

    async ensureNetwork(ctx): Promise<NetworkPlan> {
      const network = await ensureHypervNetwork(ctx, networkDeps, data(ctx).network);
      await saveData(ctx, (d) => {
        d.network = network;
      });
      return planOf(network);
    },

    async create(ctx, spec: VmSpec) {
      if (spec.memoryMiB % 2 !== 0) {
        throw new DevclusterError('HYPERV_MEMORY_UNALIGNED', `Hyper-V accepts memory only in multiples of 2 MiB; ${spec.memoryMiB} MiB is not one`, {
          advice: `Use --memory ${spec.memoryMiB - 1}m or --memory ${spec.memoryMiB + 1}m.`,
          input: true,
        });
      }
      if (spec.image.format !== 'vhdx') {
        throw new DevclusterError('HYPERV_IMAGE_UNSUITABLE', `Hyper-V boots a VHDX disk; the image gives ${spec.image.format}`, { advice: 'Use an image with a vhdx disk (the photon images have one).', input: true });
      }
      const network = data(ctx).network;
      if (network === undefined) throw new Error('hyperv: create before ensureNetwork');
      const existing = await vm(ctx);
      if (existing !== undefined) return;
      const f = files(ctx);
      const name = vmName(ctx.profile);
      const pipe = `\\\\.\\pipe\\devcluster-${ctx.profile}`;
      await mkdir(ctx.paths.disks, { recursive: true });
      await mkdir(f.vmDir, { recursive: true });
      await ctx.state.record('file', f.vhd);
      await run(createDiskScript({ vhdPath: f.vhd, baseVhdPath: spec.image.disk, diskBytes: spec.diskMiB * 1048576 }), { signal: ctx.signal, timeoutMs: 300_000 });
      await ctx.state.record('hyperv-vm', name, { dir: f.vmDir });
      const created = parseVms(
        await run(
          createVmScript({
            name,
            dir: f.vmDir,
            vhdPath: f.vhd,
            baseVhdPath: spec.image.disk,
            diskBytes: spec.diskMiB * 1048576,
            memoryMiB: spec.memoryMiB,
            cpus: spec.cpus,
            mac: hypervMac(network.mac),
            switchName: network.switchName,
            switchId: network.switchId,
            isos: [spec.seedIso, ...spec.dataIsos],
            pipe,
            // The image catalog does not say whether a guest's boot loader is signed by the Microsoft UEFI CA: off until it does.
            secureBoot: false,
          }),
          { signal: ctx.signal, timeoutMs: 120_000 },
        ),
      )[0];
      if (created === undefined) throw new Error('New-VM printed no VM');
      await saveData(ctx, (d) => {
        d.vmId = created.id;
        d.vmName = name;
        d.pipe = pipe;
      });
      await ctx.state.update((s) => {
        const r = s.resources.find((x) => x.kind === 'hyperv-vm' && x.id === name);
        if (r !== undefined) r.details = { ...r.details, vmId: created.id };
      });
    },

    async start(ctx) {
      const id = await requireVm(ctx);
      const before = await vm(ctx);
      if (before?.state === 'running') return;
      await run(startVmScript(id), { signal: ctx.signal, timeoutMs: 120_000 });
      const pipe = data(ctx).pipe;
      if (logSerial && pipe !== undefined) {
        await mkdir(ctx.paths.logs, { recursive: true });
        const pidFile = join(ctx.paths.dir, 'serial-logger.pid');
        // After a quick restart the previous logger is still waiting for the pipe and takes it again.
        if (!(await provedOurs({ pidFile, program: /^node(\.exe)?$/i, mustInclude: [pipe, pidFile] })).ours) {
          spawnDetached(process.execPath, [fileURLToPath(new URL('./serial-logger.ts', import.meta.url)), pipe, ctx.paths.serialLog, String(SERIAL_GIVE_UP_MS), pidFile], join(ctx.paths.logs, 'serial-logger.log'));
        }
      }
    },

    async resume(ctx) {
      const id = await requireVm(ctx);
      await run(resumeVmScript(id), { signal: ctx.signal, timeoutMs: 120_000 });
    },

    async stop(ctx, stopOptions: StopOptions) {
      const id = data(ctx).vmId;
      if (id === undefined || (await vm(ctx)) === undefined) return;
      // The Shutdown integration service asks the guest to power off; a guest that ignores it is turned off.
      const deadline = Date.now() + stopOptions.timeoutMs;
      try {
        // PowerShell itself needs a few seconds to start before Stop-VM's wait begins.
        await run(shutdownVmScript(id), { signal: ctx.signal, timeoutMs: stopOptions.timeoutMs + 15_000 });
      } catch (e) {
        // A guest without the integration service makes Stop-VM fail, a deaf one makes it outlast the timeout: both end in TurnOff.
        if (e instanceof PowerShellError) ctx.report(`Hyper-V could not ask the guest to shut down [${e.failure.fullyQualifiedErrorId}]`, 'warn');
        else if (!(e instanceof DevclusterError && e.id === 'HOST_COMMAND_TIMEOUT')) throw e;
      }
      if (await waitOff(ctx, deadline)) return;
      ctx.report(`the guest did not shut down within ${Math.round(stopOptions.timeoutMs / 1000)}s; turning the VM off`, 'warn');
      await driver.kill(ctx);
    },

    async kill(ctx) {
      const id = data(ctx).vmId;
      if (id === undefined || (await vm(ctx)) === undefined) return;
      await run(turnOffVmScript(id), { signal: ctx.signal, timeoutMs: 60_000 });
      if (!(await waitOff(ctx, Date.now() + 30_000))) {
        throw new DevclusterError('HYPERV_STOP_TIMEOUT', 'the VM is still not Off after Stop-VM -TurnOff', {
          advice: 'Its worker process (vmwp.exe) may hang: restart the "Hyper-V Virtual Machine Management" service (vmms) as Administrator, then run the command again.',
        });
      }
    },

    async delete(ctx) {
      const f = files(ctx);
      const d = ctx.state.state === undefined ? {} : data(ctx);
      const name = vmName(ctx.profile);
      let ids = d.vmId === undefined ? [] : [d.vmId];
      // A create stopped between New-VM and saving the Id left a registered VM that only its name and folder identify.
      if (ids.length === 0 && (ctx.state.state?.resources ?? []).some((r) => r.kind === 'hyperv-vm' && r.id === name)) {
        ids = parseVms(await run(findOwnVmScript(name, f.vmDir), { signal: ctx.signal })).map((v) => v.id);
      }
      for (const id of ids) {
        await run(removeVmScript(id), { signal: ctx.signal, timeoutMs: 180_000 });
        const deadline = Date.now() + 60_000;
        while (parseVms(await run(vmStateScript(id), { signal: ctx.signal })).length > 0) {
          if (Date.now() >= deadline) throw new DevclusterError('HYPERV_STOP_TIMEOUT', `the VM ${id} is still registered after Remove-VM`, { advice: 'Remove it in Hyper-V Manager, then run `devcluster delete` again.' });
          await sleep(pollMs);
        }
      }
      await ctx.state.forget('hyperv-vm', name);
      await removeWithRetries(f.vmDir, options.fileRetryMs ?? 30_000);
      await removeWithRetries(f.vhd, options.fileRetryMs ?? 30_000);
      await ctx.state.forget('file', f.vhd);
      await releaseHypervNetwork(ctx, networkDeps);
      await hypervData.clear(ctx);
    },

    async state(ctx): Promise<VmState> {
      const v = await vm(ctx);
      return v === undefined ? 'absent' : v.state;
    },

    async address(ctx, wait): Promise<GuestAddress> {
      const network = data(ctx).network;
      const plan = network === undefined ? undefined : planOf(network);
      if (plan?.guestAddress.kind === 'static') return { ip: plan.guestAddress.cidr.split('/')[0] as string, source: 'static' };
      const id = await requireVm(ctx);
      const started = Date.now();
      let lastSeen: readonly string[];
      for (;;) {
        ctx.signal.throwIfAborted();
        const row = records(await run(vmAddressScript(id), { signal: ctx.signal }))[0];
        if (row === undefined) throw new DevclusterError('HYPERV_VM_GONE', 'the VM disappeared while devcluster waited for its address');
        const kvp = stringList(row, 'IPAddresses');
        lastSeen = kvp;
        const ip = firstUsableIpv4(kvp) ?? firstUsableIpv4(stringList(row, 'Neighbors'));
        if (ip !== undefined) return { ip, source: 'hypervisor-api' };
        if (Number(row['State']) === 3) throw new DevclusterError('HYPERV_VM_GONE', 'the VM is Off: it powered off (or crashed) while devcluster waited for its address', { advice: `Its serial console is in ${ctx.paths.serialLog}.` });
        wait.onProgress?.(`waiting for Hyper-V to report the guest's IPv4 address (${Math.round((Date.now() - started) / 1000)}s${kvp.length > 0 ? `; so far only ${kvp.join(', ')}` : ''})`);
        if (Date.now() >= wait.deadline) break;
        await sleep(pollMs);
      }
      const cause =
        network?.mode === 'switch'
          ? `the switch "${network.switchName}" gave the guest no DHCP address (an Internal or Private switch has no DHCP server; only the Default Switch does)`
          : network?.mode === 'external'
            ? 'the LAN behind the External switch gave the guest no DHCP address (a network that admits only known devices refuses it)'
            : 'Internet Connection Sharing gave the guest no address';
      throw new DevclusterError('HYPERV_NO_ADDRESS', `Hyper-V reported no IPv4 address for the VM${lastSeen.length > 0 ? ` (only ${lastSeen.join(', ')})` : ''}: ${cause}, or the guest's hv_kvp_daemon is not running`, {
        advice: `A connected VPN may take the DHCP traffic: disconnect it and retry. The guest's own view is in its serial console, ${ctx.paths.serialLog}. The default network (devcluster's switch with WinNAT) needs no DHCP. ${DOCTOR}`,
      });
    },

    async details(ctx): Promise<VmDetails> {
      const v = await vm(ctx);
      return v === undefined || v.state !== 'running' ? {} : { acceleration: { accelerator: 'hyperv', hardware: true, reason: 'Hyper-V runs the VM on the Windows hypervisor' } };
    },

    async crashReport(ctx): Promise<CrashReport> {
      const log = tail((await readTextIfExists(ctx.paths.serialLog)) ?? '', 20);
      const v = await vm(ctx).catch(() => undefined);
      const cause = v === undefined ? 'the VM is no longer registered in Hyper-V' : `Hyper-V reports the VM as ${v.stateName}${v.status === undefined || v.status === '' ? '' : ` (${v.status})`}`;
      return { cause, ...(log === '' ? {} : { log }) };
    },
  };
  return driver;
}

export const hypervDriver: Driver = createHypervDriver({ platform: process.platform });

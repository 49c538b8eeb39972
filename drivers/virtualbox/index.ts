import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { arch as hostArch } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseLinuxRoutes, parseMacRoutes, parseWindowsRoutes } from '../../src/doctor/net.ts';
import type { Route } from '../../src/doctor/net.ts';
import { WINDOWS_QUERIES } from '../../src/doctor/windows-queries.ts';
import { DHCPD_LEASES_PATH, findDhcpdLease, parseDhcpdLeases } from '../../src/host/dhcpd-leases.ts';
import { run, tail } from '../../src/host/exec.ts';
import { ipv4ToInt, netContainsAddress, parseCidr } from '../../src/host/ipv4.ts';
import { powershellJsonText } from '../../src/host/powershell.ts';
import { readTextIfExists } from '../../src/host/read-if-exists.ts';
import { readJsonIfExists } from '../../src/profile/atomic.ts';
import { withNetworkLock } from '../../src/profile/host-network-lock.ts';
import { homePaths } from '../../src/profile/paths.ts';
import type { ProfileState } from '../../src/profile/state.ts';
import { logLine } from '../../src/ui/context.ts';
import { DevclusterError, isDevclusterError } from '../../src/ui/errors.ts';
import type { AddressWait, Availability, CrashReport, Driver, DriverContext, GuestAddress, HostContext, NetworkPlan, NetworkRequest, StopOptions, VmDetails, VmSpec, VmState } from '../driver.ts';
import { driverDataStore } from '../driver-data.ts';
import { chooseForwards, forwardEndpoints } from '../../src/host/port-forwards.ts';
import type { PortForwards } from '../../src/host/port-forwards.ts';
import * as cmd from './commands.ts';
import { findVBoxManage, localLocateHost } from './locate.ts';
import type { FoundVBoxManage } from './locate.ts';
import type { HostOnlyAttachment, NatForward, VBoxTarget, VmLayout } from './commands.ts';
import { addressesOf, allowedRanges, chooseSubnet, occupiedSubnets } from './hostonly-plan.ts';
import type { HostOnlyAddresses } from './hostonly-plan.ts';
import { mapVmState, parseCapacityMiB, parseCreatedInterface, parseDhcpServers, parseHdds, parseHostOnlyIfs, parseHostOnlyNets, parseMachineReadable, parseNetworksConf } from './parse.ts';
import { explainVBoxLog, usedNem } from './vbox-log.ts';
import { commandError, MISSING_VM, openVBoxManage } from './vboxmanage.ts';
import type { VBoxManage } from './vboxmanage.ts';
import './errors.ts';

export const NETWORK_MODE = 'nat-hostonly';
export const VM_RESOURCE = 'virtualbox-vm';
export const HOSTONLYIF_RESOURCE = 'virtualbox-hostonlyif';
export const HOSTONLYNET_RESOURCE = 'virtualbox-hostonlynet';
export const DHCP_RESOURCE = 'virtualbox-dhcpserver';

/** What the VirtualBox driver keeps in the profile's state between commands. */
export interface VBoxData {
  /** NIC1 (NAT) and NIC2 (host-only), 12 upper-case hex digits as VirtualBox writes them. */
  macs?: [string, string];
  forwards?: PortForwards;
  /** guid: a legacy adapter's identity; its name alone is reused by VirtualBox once an adapter is removed ("#2" on Windows, vboxnet0). */
  hostOnly?: HostOnlyAttachment & HostOnlyAddresses & { guid?: string };
  disk?: string;
  base?: string;
  /** Set once every step of create succeeded; a VM without it is rebuilt. */
  complete?: boolean;
  startedAt?: string;
}

/** The host facts the driver reads besides VBoxManage, replaceable in tests. */
export interface VirtualBoxHost {
  /** VBoxManage for a host platform (tests hand a double to a simulated Windows or macOS). */
  locate(platform: NodeJS.Platform): Promise<FoundVBoxManage | undefined>;
  arch: string;
  /** The host's IPv4 routes, to keep the host-only subnet off networks already routed; [] when unreadable. */
  routes(platform: NodeJS.Platform): Promise<Route[]>;
  /** /etc/vbox/networks.conf, undefined when absent. */
  networksConf(): Promise<string | undefined>;
  pollMs: number;
  /** How long VirtualBox may take to reach "running" after startvm, or "poweroff" after a forced power-off. */
  startTimeoutMs: number;
  /** How long a new host-only adapter may take to appear. */
  adapterAppearMs: number;
  /** The first pause before a transient VBoxManage failure is tried again (it grows with each attempt). */
  retryDelayMs: number;
  /** bootpd's lease file, where vmnet (a VirtualBox 7 host-only network on macOS) records the guest's address; /var/db/dhcpd_leases unless a test says otherwise. */
  leasesPath?: string;
}

export const LOCAL_HOST: VirtualBoxHost = {
  locate: (platform) => findVBoxManage(localLocateHost(process.env, platform, run)),
  arch: hostArch(),
  async routes(platform) {
    try {
      if (platform === 'linux') return parseLinuxRoutes((await run('ip', ['-j', '-4', 'route', 'show', 'table', 'main'], { timeoutMs: 5000, parse: true })).stdout);
      if (platform === 'darwin') return parseMacRoutes((await run('netstat', ['-rn', '-f', 'inet'], { timeoutMs: 5000, parse: true })).stdout);
      if (platform === 'win32') return parseWindowsRoutes(await powershellJsonText(run, WINDOWS_QUERIES.routes));
    } catch (e) {
      logLine('debug', `virtualbox: the host's routes could not be read: ${(e as Error).message}`);
    }
    return [];
  },
  networksConf: () => readTextIfExists('/etc/vbox/networks.conf'),
  pollMs: 1000,
  startTimeoutMs: 60_000,
  adapterAppearMs: 10_000,
  retryDelayMs: 200,
};

export function vmName(profile: string): string {
  return `devcluster-${profile}`;
}

const vboxData = driverDataStore<VBoxData>('virtualbox', () => ({}));
const data = vboxData.get;
const saveData = vboxData.update;

function files(ctx: DriverContext) {
  const baseFolder = join(ctx.paths.dir, 'virtualbox');
  const vmDir = join(baseFolder, vmName(ctx.profile));
  return { baseFolder, vmDir, vboxLog: join(vmDir, 'Logs', 'VBox.log'), disk: join(ctx.paths.disks, 'disk.vdi') };
}

/** VirtualBox's own OUI; the rest random, per profile, so two VMs never share a MAC. */
function randomMac(): string {
  return `080027${randomBytes(3).toString('hex').toUpperCase()}`;
}

export function colonMac(mac: string): string {
  return mac.toLowerCase().match(/../g)?.join(':') ?? mac;
}

function forwardsList(f: PortForwards): NatForward[] {
  return Object.entries(f).map(([g, h]) => ({ guestPort: Number(g), hostPort: h }));
}

async function logTail(path: string, lines: number): Promise<string> {
  return tail((await readFile(path, 'utf8').catch(() => '')).replace(/\r\n/g, '\n'), lines);
}

/** Whether a profile other than `self` records the same host resource (a subnet, an adapter). */
async function usedByOtherProfile(home: string, self: string, kind: string, id: string): Promise<string | undefined> {
  const dir = homePaths(home).profiles;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (name === self) continue;
    const s = (await readJsonIfExists(join(dir, name, 'state.json')).catch(() => undefined)) as ProfileState | undefined;
    if (s?.resources?.some((r) => r.kind === kind && r.id === id) === true) return name;
  }
  return undefined;
}

/**
 * The driver over one VirtualBox installation (or, in tests, a scripted
 * VBoxManage double). NIC1 is NAT with the pipeline's ports forwarded on
 * 127.0.0.1; NIC2 is host-only, where VirtualBox's DHCP server always gives
 * the guest the same address (a reservation for NIC2's MAC). A VirtualBox 7
 * host-only network on macOS is vmnet's, which reserves nothing: the guest's
 * address is read from bootpd's leases.
 */
export function createVirtualBoxDriver(host: VirtualBoxHost): Driver {
  async function open(ctx: HostContext): Promise<{ vbm: VBoxManage; target: VBoxTarget }> {
    const { vbm, version } = await openVBoxManage(await host.locate(ctx.platform), ctx.platform, ctx.signal, { retryDelayMs: host.retryDelayMs });
    return { vbm, target: { platform: ctx.platform, arch: host.arch, version } };
  }

  async function vmState(vbm: VBoxManage, vm: string, signal?: AbortSignal): Promise<VmState> {
    const r = await vbm.run(cmd.showVmInfoArgs(vm), { allowFailure: true, ...(signal === undefined ? {} : { signal }) });
    if (r.failed) {
      if (MISSING_VM.test(r.stderr)) return 'absent';
      throw commandError(cmd.showVmInfoArgs(vm), r);
    }
    const info = parseMachineReadable(r.stdout);
    // A VM whose settings file is gone is listed as "<inaccessible>": VirtualBox cannot run it.
    if (info.get('name') === '<inaccessible>') return 'broken';
    return mapVmState(info.get('VMState'));
  }

  async function waitForState(vbm: VBoxManage, vm: string, wanted: (s: VmState) => boolean, timeoutMs: number, signal: AbortSignal): Promise<VmState> {
    const deadline = Date.now() + timeoutMs;
    let s = await vmState(vbm, vm, signal);
    while (!wanted(s) && Date.now() < deadline) {
      await sleep(host.pollMs, undefined, { signal });
      s = await vmState(vbm, vm, signal);
    }
    return s;
  }

  /** Interfaces (legacy adapters) and networks (VirtualBox 7) that exist now. */
  async function listings(vbm: VBoxManage, target: VBoxTarget) {
    const ifs = parseHostOnlyIfs((await vbm.run(['list', 'hostonlyifs'])).stdout);
    // Host-only networks are vmnet's (VBOX_WITH_VMNET, macOS builds): elsewhere `list hostonlynets` may be an unknown subcommand.
    const listedNets = target.version.major >= 7 ? await vbm.run(['list', 'hostonlynets'], { allowFailure: !cmd.usesHostOnlyNet(target) }) : undefined;
    const nets = listedNets === undefined || listedNets.failed ? [] : parseHostOnlyNets(listedNets.stdout);
    const dhcp = parseDhcpServers((await vbm.run(['list', 'dhcpservers'])).stdout);
    return { ifs, nets, dhcp };
  }

  /** The recorded host-only attachment, when it still exists with its address. */
  function stillThere(h: VBoxData['hostOnly'], l: Awaited<ReturnType<typeof listings>>): boolean {
    if (h === undefined) return false;
    if (h.kind === 'hostonlynet') return l.nets.some((n) => n.name === h.name);
    return l.ifs.some((i) => sameAdapter(i, h) && i.ip === h.hostIp);
  }

  async function createHostOnly(ctx: DriverContext, vbm: VBoxManage, target: VBoxTarget, macs: [string, string]): Promise<NonNullable<VBoxData['hostOnly']>> {
    const l = await listings(vbm, target);
    const routes = await host.routes(ctx.platform);
    const conf = await host.networksConf();
    const allowed = allowedRanges(ctx.platform, target.version, conf === undefined ? undefined : parseNetworksConf(conf));
    const choice = chooseSubnet(allowed, occupiedSubnets({ ...l, routes }));
    if (choice.net === undefined) {
      throw new DevclusterError('VBOX_HOSTONLY_FAILED', `no free /24 for a host-only network in ${allowed === undefined ? '192.168.56.0/21' : 'the ranges VirtualBox allows'}: ${choice.considered.join('; ') || 'nothing allowed'}`, {
        advice: ctx.platform === 'win32' || allowed === undefined
          ? 'Remove host-only adapters you no longer use (VBoxManage hostonlyif remove <name>), or delete other devcluster profiles.'
          : 'Allow another range in /etc/vbox/networks.conf (a line such as `* 192.168.56.0/21 10.56.0.0/16`), or remove host-only adapters you no longer use.',
      });
    }
    const a = addressesOf(choice.net);
    if (cmd.usesHostOnlyNet(target)) {
      // Named after its subnet too: a network left by an interrupted start (or another DEVCLUSTER_HOME's profile of
      // the same name) occupies its subnet, so the new one gets another name instead of being mistaken for it.
      const name = hostOnlyNetName(ctx.profile, a.subnet);
      if (l.nets.some((n) => n.name === name)) {
        throw new DevclusterError('VBOX_HOSTONLY_FAILED', `VirtualBox already has a host-only network named ${name}, which this profile did not create`, {
          advice: `Remove it if nothing uses it (VBoxManage hostonlynet remove --name ${name}), or use another profile name (-p).`,
        });
      }
      await ctx.state.record(HOSTONLYNET_RESOURCE, name, { subnet: a.subnet });
      // vmnet takes the lower address as the host's (the gateway) and hands out the rest by DHCP: no reservation is
      // possible, so address() reads the guest's lease from bootpd's file by NIC2's MAC.
      await vbm.run(['hostonlynet', 'add', '--name', name, '--netmask', a.netmask, '--lower-ip', a.hostIp, '--upper-ip', a.upperIp, '--enable']);
      return { kind: 'hostonlynet', name, ...a };
    }
    // Recorded by subnet before it exists: VirtualBox names the adapter only when it creates it.
    await ctx.state.record(HOSTONLYIF_RESOURCE, a.subnet, {});
    const before = new Set(l.ifs.map((i) => i.name));
    if (ctx.platform === 'win32') ctx.report('Windows may ask for permission to create a network adapter; the prompt is sometimes minimized in the taskbar', 'warn');
    const created = await vbm.run(['hostonlyif', 'create'], { allowFailure: true, timeoutMs: 120_000 });
    let name = parseCreatedInterface(created.stdout);
    // VirtualBox sometimes reports a failure and creates the adapter anyway (VirtualBox ticket 14040).
    const deadline = Date.now() + host.adapterAppearMs;
    while (name === undefined) {
      const now = parseHostOnlyIfs((await vbm.run(['list', 'hostonlyifs'])).stdout);
      name = now.find((i) => !before.has(i.name))?.name;
      if (name !== undefined || Date.now() >= deadline) break;
      await sleep(host.pollMs, undefined, { signal: ctx.signal });
    }
    if (name === undefined) {
      const why = created.failed ? created.stderr.split('\n').find((x) => /error:/i.test(x))?.replace(/^\S*:\s*error:\s*/i, '') ?? `exit code ${created.exitCode}` : 'it reported no adapter';
      await ctx.state.forget(HOSTONLYIF_RESOURCE, a.subnet);
      throw new DevclusterError('VBOX_HOSTONLY_FAILED', `VirtualBox did not create a host-only adapter: ${why}`, {
        advice: ctx.platform === 'win32'
          ? 'Run devcluster from an Administrator terminal once (creating an adapter needs it) and accept the prompt, or reinstall VirtualBox with its networking components.'
          : ctx.platform === 'linux'
            ? 'Load VirtualBox\'s network modules (`sudo modprobe vboxnetadp vboxnetflt`, or `sudo /sbin/vboxconfig`) and start again.'
            : 'Allow VirtualBox\'s system extension in System Settings > Privacy & Security, restart, and start again.',
        details: { stderrTail: tail(created.stderr, 10) },
      });
    }
    const adapter = name;
    const guid = parseHostOnlyIfs((await vbm.run(['list', 'hostonlyifs'])).stdout).find((i) => i.name === adapter)?.guid;
    await ctx.state.update((s) => {
      const r = s.resources.find((x) => x.kind === HOSTONLYIF_RESOURCE && x.id === a.subnet);
      if (r !== undefined) r.details = { name: adapter, ...(guid === undefined ? {} : { guid }) };
    });
    await vbm.run(['hostonlyif', 'ipconfig', adapter, '--ip', a.hostIp, '--netmask', a.netmask]);
    const network = `HostInterfaceNetworking-${adapter}`;
    await ctx.state.record(DHCP_RESOURCE, network, { adapter });
    const exists = parseDhcpServers((await vbm.run(['list', 'dhcpservers'])).stdout).some((d) => d.networkName === network);
    await vbm.run(['dhcpserver', exists ? 'modify' : 'add', '--network', network, '--server-ip', a.dhcpServerIp, '--netmask', a.netmask, '--lower-ip', a.lowerIp, '--upper-ip', a.upperIp, '--enable']);
    // The guest's address is a reservation for NIC2's MAC: known before the VM boots.
    await vbm.run(['dhcpserver', 'modify', '--network', network, '--mac-address', colonMac(macs[1]), '--fixed-address', a.guestIp]);
    return { kind: 'hostonlyif', name: adapter, ...(guid === undefined ? {} : { guid }), ...a };
  }

  /** NIC2's address from bootpd's leases, inside the host-only subnet, waited for until the deadline. */
  async function vmnetLease(ctx: DriverContext, d: VBoxData, wait: AddressWait): Promise<string | undefined> {
    const subnet = parseCidr(d.hostOnly?.subnet ?? '');
    const mac = d.macs?.[1];
    if (subnet === undefined || mac === undefined) return undefined;
    for (;;) {
      // Only leases inside the subnet: one elsewhere is an older network's, not where the host reaches this guest now.
      const text = await readTextIfExists(host.leasesPath ?? DHCPD_LEASES_PATH);
      const inSubnet = parseDhcpdLeases(text ?? '').filter((l) => netContainsAddress(subnet, ipv4ToInt(l.ipAddress)));
      const lease = findDhcpdLease(inSubnet, colonMac(mac), { now: Math.floor(Date.now() / 1000) });
      if (lease !== undefined) return lease.ipAddress;
      if (Date.now() >= wait.deadline) return undefined;
      wait.onProgress?.(`waiting for vmnet's DHCP lease for ${colonMac(mac)}`);
      await sleep(host.pollMs, undefined, { signal: ctx.signal });
    }
  }

  async function removeHostOnly(ctx: DriverContext, vbm: VBoxManage): Promise<void> {
    const resources = ctx.state.require().resources.filter((r) => r.kind === HOSTONLYIF_RESOURCE || r.kind === HOSTONLYNET_RESOURCE || r.kind === DHCP_RESOURCE);
    // The DHCP server goes before its adapter: VirtualBox finds it by the adapter's network name.
    resources.sort((x, y) => Number(y.kind === DHCP_RESOURCE) - Number(x.kind === DHCP_RESOURCE));
    for (const r of resources) {
      const other = await usedByOtherProfile(ctx.home, ctx.profile, r.kind, r.id);
      if (other !== undefined) {
        ctx.report(`kept ${r.kind} ${r.id}: profile ${other} uses it too`);
        await ctx.state.forget(r.kind, r.id);
        continue;
      }
      if (r.kind === DHCP_RESOURCE) {
        const listed = parseDhcpServers((await vbm.run(['list', 'dhcpservers'])).stdout).some((d) => d.networkName === r.id);
        if (listed) await vbm.run(['dhcpserver', 'remove', '--network', r.id]);
      } else if (r.kind === HOSTONLYNET_RESOURCE) {
        const listed = parseHostOnlyNets((await vbm.run(['list', 'hostonlynets'])).stdout).some((n) => n.name === r.id);
        if (listed) await vbm.run(['hostonlynet', 'remove', '--name', r.id]);
      } else {
        const name = typeof r.details?.['name'] === 'string' ? r.details['name'] : undefined;
        const guid = typeof r.details?.['guid'] === 'string' ? r.details['guid'] : undefined;
        const listed = name === undefined ? undefined : parseHostOnlyIfs((await vbm.run(['list', 'hostonlyifs'])).stdout).find((i) => i.name === name);
        if (name === undefined) {
          ctx.report(`a host-only adapter for ${r.id} may have been created by an interrupted start, but its name was never learnt; check \`VBoxManage list hostonlyifs\``, 'warn');
        } else if (listed !== undefined && !sameAdapter(listed, { name, ...(guid === undefined ? {} : { guid }) })) {
          ctx.report(`kept host-only adapter ${name}: it is not the one devcluster created (that one is gone; VirtualBox reused its name)`, 'warn');
        } else if (listed !== undefined) {
          await vbm.run(['hostonlyif', 'remove', name], { timeoutMs: 120_000 });
        }
      }
      await ctx.state.forget(r.kind, r.id);
    }
  }

  /** Removes a VM devcluster created, with its disk, keeping the base and the ISOs (shared or not VirtualBox's). */
  async function removeVm(ctx: DriverContext, vbm: VBoxManage, vm: string): Promise<void> {
    const f = files(ctx);
    const s = await vmState(vbm, vm, ctx.signal);
    if (s !== 'absent' && !(await settingsInProfile(vbm, vm, f.vmDir, ctx.platform))) {
      // The recorded VM is gone and another of the same name took its place: not devcluster's to remove.
      ctx.report(`kept the VirtualBox VM ${vm}: its settings are not in this profile's folder, so devcluster did not create it`, 'warn');
    } else if (s !== 'absent') {
      if (s === 'saved') await vbm.run(cmd.discardStateArgs(vm));
      else if (s !== 'stopped') await driver.kill(ctx);
      // Detached and closed first: `unregistervm --delete` deletes every disk only this VM uses, and the chain leads to the cached base.
      const info = parseMachineReadable((await vbm.run(cmd.showVmInfoArgs(vm))).stdout);
      if ((info.get(`${cmd.CONTROLLER}-0-0`) ?? 'none') !== 'none') await vbm.run(cmd.detachArgs(vm, 0));
      await vbm.run(cmd.unregisterArgs(vm));
    }
    const registered = parseHdds((await vbm.run(['list', 'hdds'])).stdout).some((m) => samePath(m.location, f.disk, ctx.platform));
    if (registered) await vbm.run(cmd.closeDiskArgs(f.disk, true));
    await rm(f.disk, { force: true });
    await rm(f.vmDir, { recursive: true, force: true });
  }

  const driver: Driver = {
    info: {
      name: 'virtualbox',
      displayName: 'VirtualBox',
      platforms: ['win32', 'linux', 'darwin'],
      features: {
        networkModes: {
          [NETWORK_MODE]: { description: 'NAT (ports forwarded on 127.0.0.1) plus a host-only network with a fixed guest address; no elevation except on Windows the first time an adapter is created', address: 'static', elevation: {} },
        },
        macKnown: 'plan',
        directKernelBoot: false,
        diskFormats: ['vmdk'],
        registersBaseMedia: true,
      },
    },

    async available(ctx): Promise<Availability> {
      try {
        const { vbm, target } = await open(ctx);
        if (cmd.armGuest(target) && !(target.version.major > 7 || (target.version.major === 7 && target.version.minor >= 1))) {
          return { status: 'unavailable', reason: `VirtualBox ${target.version.text} does not run VMs on Apple silicon (7.1 or newer does)`, fix: 'Update VirtualBox to 7.1 or newer, or use --driver=qemu.' };
        }
        return { status: 'available', detail: `VirtualBox ${target.version.text} (${vbm.path}, found through ${vbm.source})` };
      } catch (e) {
        if (isDevclusterError(e) && (e.id === 'VBOX_NOT_FOUND' || e.id === 'VBOX_VERSION_UNSUPPORTED')) {
          return { status: 'unavailable', reason: e.message, fix: e.advice ?? '' };
        }
        throw e;
      }
    },

    async ensureNetwork(ctx, request: NetworkRequest): Promise<NetworkPlan> {
      const { vbm, target } = await open(ctx);
      const vm = vmName(ctx.profile);
      const d = data(ctx);
      const macs: [string, string] = d.macs ?? [randomMac(), randomMac()];
      while (macs[1] === macs[0]) macs[1] = randomMac();
      const running = (await vmState(vbm, vm, ctx.signal)) === 'running';
      const forwards = await chooseForwards(request.ports, d.forwards, running);
      // The host-wide network lock every driver takes: two profiles starting at once do not choose the same subnet.
      const hostOnly = await withNetworkLock(ctx.home, ctx.signal, async (): Promise<NonNullable<VBoxData['hostOnly']>> => {
        await saveData(ctx, (x) => {
          x.macs = macs;
        });
        const now = await listings(vbm, target);
        const recorded = d.hostOnly;
        if (recorded?.kind === 'hostonlyif' && now.ifs.some((i) => sameAdapter(i, recorded) && i.ip !== recorded.hostIp)) {
          // Windows has been seen to lose an adapter's address (after sleep, an update): it is set again rather than replaced.
          ctx.report(`the host-only adapter ${recorded.name} lost its address; setting ${recorded.hostIp} again`, 'warn');
          await vbm.run(['hostonlyif', 'ipconfig', recorded.name, '--ip', recorded.hostIp, '--netmask', recorded.netmask]);
          return recorded;
        }
        return recorded !== undefined && stillThere(recorded, now) ? recorded : await createHostOnly(ctx, vbm, target, macs);
      });
      if (d.hostOnly !== undefined && d.hostOnly.guestIp !== hostOnly.guestIp) ctx.report(`the host-only network was gone and was made again: the guest's address is now ${hostOnly.guestIp}`, 'warn');
      await saveData(ctx, (x) => {
        x.forwards = forwards;
        x.hostOnly = hostOnly;
      });
      // Both NICs ask for DHCP (the seed matches every Ethernet NIC): NAT gives the default route and DNS, the host-only server the fixed address.
      return { mode: NETWORK_MODE, guestAddress: { kind: 'dhcp' }, dns: [], forwards: forwardEndpoints(forwards), subnet: hostOnly.subnet, gateway: hostOnly.hostIp };
    },

    async create(ctx, spec: VmSpec) {
      const { vbm, target } = await open(ctx);
      if (spec.image.format !== 'vmdk') {
        throw new DevclusterError('VBOX_IMAGE_UNSUITABLE', `the VirtualBox driver boots a VMDK base image; the image is ${spec.image.format}`, { advice: 'Use a catalog image that offers VMDK (photon-5 does), or convert yours: qemu-img convert -O vmdk <disk> <disk>.vmdk.', input: true });
      }
      const d = data(ctx);
      if (d.macs === undefined || d.hostOnly === undefined || d.forwards === undefined) throw new Error('virtualbox: create before ensureNetwork');
      const vm = vmName(ctx.profile);
      const f = files(ctx);
      const existing = await vmState(vbm, vm, ctx.signal);
      if (existing !== 'absent') {
        if (!ctx.state.has(VM_RESOURCE, vm) || !(await settingsInProfile(vbm, vm, f.vmDir, ctx.platform))) {
          throw new DevclusterError('VBOX_VM_NAME_TAKEN', `VirtualBox already has a VM named ${vm}, which this profile did not create`, {
            advice: `Rename or remove that VM in VirtualBox (VBoxManage unregistervm ${vm}), or use another profile name (-p).`,
          });
        }
        if (d.complete === true) return;
        ctx.report('a previous create stopped part-way; removing its VM and making it again', 'warn');
      }
      if (existing !== 'absent' || (await readdir(f.vmDir).then(() => true, () => false))) await removeVm(ctx, vbm, vm);
      const capacity = parseCapacityMiB((await vbm.run(['showmediuminfo', 'disk', spec.image.disk])).stdout);
      if (capacity !== undefined && spec.diskMiB < capacity) {
        throw new DevclusterError('VBOX_DISK_TOO_SMALL', `disk-size ${spec.diskMiB}MiB is smaller than the image (${capacity}MiB)`, { advice: `Use --disk-size ${Math.ceil(capacity / 1024)}g or more.`, input: true });
      }
      await mkdir(ctx.paths.disks, { recursive: true });
      await mkdir(ctx.paths.logs, { recursive: true });
      const layout: VmLayout = { vm, baseFolder: f.baseFolder, cpus: spec.cpus, memoryMiB: spec.memoryMiB, macs: d.macs, serialLog: ctx.paths.serialLog, forwards: forwardsList(d.forwards), hostOnly: { kind: d.hostOnly.kind, name: d.hostOnly.name } };
      await ctx.state.record(VM_RESOURCE, vm);
      await ctx.state.record('file', f.disk);
      await saveData(ctx, (x) => {
        x.complete = false;
        x.disk = f.disk;
        x.base = spec.image.disk;
      });
      const steps = cmd.createSequence(target, layout, {
        base: spec.image.disk,
        disk: f.disk,
        ...(capacity !== undefined && spec.diskMiB > capacity ? { resizeMiB: spec.diskMiB } : {}),
        isos: [spec.seedIso, ...spec.dataIsos],
      });
      for (const args of steps) await vbm.run(args, { timeoutMs: 120_000, signal: ctx.signal });
      await saveData(ctx, (x) => {
        x.complete = true;
      });
    },

    async start(ctx) {
      const { vbm } = await open(ctx);
      const vm = vmName(ctx.profile);
      const d = data(ctx);
      if (d.complete !== true) throw new Error('virtualbox: start before create');
      const now = await vmState(vbm, vm, ctx.signal);
      if (now === 'running' || now === 'starting') return;
      if (now === 'paused' || now === 'saved') {
        await driver.resume(ctx);
        return;
      }
      if (now === 'absent') throw new DevclusterError('VBOX_START_FAILED', `VirtualBox no longer knows the VM ${vm}`, { advice: 'It was removed outside devcluster: `devcluster delete`, then start again.' });
      const info = parseMachineReadable((await vbm.run(cmd.showVmInfoArgs(vm))).stdout);
      const attached = info.get('hostonlyadapter2') ?? info.get('hostonly-network2');
      if (d.hostOnly !== undefined && d.macs !== undefined && attached !== d.hostOnly.name) {
        // The host-only network was gone and ensureNetwork made it again, under another name.
        await vbm.run(['modifyvm', vm, ...cmd.hostOnlyNicArgs(d.hostOnly, d.macs[1])]);
      }
      const wanted = forwardsList(d.forwards ?? {}).map((x) => ({ name: `port ${x.guestPort}`, guestPort: x.guestPort }));
      const forwards = await chooseForwards(wanted, d.forwards);
      const moved = forwardsList(forwards).filter((x) => d.forwards?.[String(x.guestPort)] !== x.hostPort);
      const reforward = cmd.reforwardArgs(vm, moved);
      if (reforward !== undefined) {
        ctx.report(`forwarded ports changed (the previous ones are in use): ${moved.map((x) => `guest ${x.guestPort} -> 127.0.0.1:${x.hostPort}`).join(', ')}`, 'warn');
        await vbm.run(reforward);
        await saveData(ctx, (x) => {
          x.forwards = forwards;
        });
      }
      await saveData(ctx, (x) => {
        x.startedAt = new Date().toISOString();
      });
      // startvm's exit code is not its outcome: some hosts exit 1 after a successful start, others 0 after a failed one.
      const r = await vbm.run(cmd.startArgs(vm), { allowFailure: true, timeoutMs: 120_000, signal: ctx.signal });
      const after = await waitForState(vbm, vm, (s) => s === 'running' || s === 'stopped' || s === 'broken' || s === 'absent', r.failed ? host.pollMs : host.startTimeoutMs, ctx.signal);
      if (after === 'running') return;
      const log = await readFile(files(ctx).vboxLog, 'utf8').catch(() => '');
      const verdict = explainVBoxLog(`${log}\n${r.stderr}`);
      const said = r.stderr.split('\n').find((l) => /error:/i.test(l))?.replace(/^\S*:\s*error:\s*/i, '').trim();
      throw new DevclusterError('VBOX_START_FAILED', `VirtualBox did not start ${vm} (it is ${after})${verdict === undefined ? (said === undefined ? '' : `: ${said}`) : `: ${verdict.cause} (${verdict.code})`}`, {
        advice: verdict?.fix ?? `The VM's log is ${files(ctx).vboxLog}; \`devcluster doctor --driver virtualbox\` checks the usual causes.`,
        details: { stderrTail: tail(r.stderr, 10), vboxLog: tail(log, 15), ...(verdict === undefined ? {} : { reason: verdict.reason, line: verdict.line }) },
      });
    },

    async resume(ctx) {
      const { vbm } = await open(ctx);
      const vm = vmName(ctx.profile);
      const s = await vmState(vbm, vm, ctx.signal);
      if (s === 'paused') await vbm.run(cmd.controlArgs(vm, 'resume'));
      else if (s === 'saved') await vbm.run(cmd.startArgs(vm), { allowFailure: true, timeoutMs: 120_000 });
      else if (s !== 'running') return driver.start(ctx);
      const after = await waitForState(vbm, vm, (x) => x === 'running', host.startTimeoutMs, ctx.signal);
      if (after !== 'running') throw new DevclusterError('VBOX_START_FAILED', `VirtualBox did not resume ${vm} (it is ${after})`, { advice: `The VM's log is ${files(ctx).vboxLog}.` });
    },

    async stop(ctx, options: StopOptions) {
      const { vbm } = await open(ctx);
      const vm = vmName(ctx.profile);
      let s = await vmState(vbm, vm, ctx.signal);
      if (s === 'absent' || s === 'stopped' || s === 'saved') return;
      // A paused guest cannot see the power button (VBOX_E_INVALID_VM_STATE).
      if (s === 'paused') await vbm.run(cmd.controlArgs(vm, 'resume'));
      await vbm.run(cmd.controlArgs(vm, 'acpipowerbutton'), { allowFailure: true });
      s = await waitForState(vbm, vm, (x) => x === 'stopped' || x === 'absent', options.timeoutMs, ctx.signal);
      if (s === 'stopped' || s === 'absent') return;
      ctx.report(`the guest did not power off within ${Math.round(options.timeoutMs / 1000)}s; powering the VM off`, 'warn');
      await driver.kill(ctx);
    },

    async kill(ctx) {
      const { vbm } = await open(ctx);
      const vm = vmName(ctx.profile);
      const s = await vmState(vbm, vm, ctx.signal);
      if (s === 'absent' || s === 'stopped' || s === 'saved') return;
      const r = await vbm.run(cmd.controlArgs(vm, 'poweroff'), { allowFailure: true, timeoutMs: 60_000 });
      const after = await waitForState(vbm, vm, (x) => x === 'stopped' || x === 'absent', host.startTimeoutMs, ctx.signal);
      if (after !== 'stopped' && after !== 'absent') {
        throw new DevclusterError('VBOX_STOP_TIMEOUT', `${vm} is still ${after} after controlvm poweroff${r.failed ? `: ${r.stderr.trim().split('\n')[0] ?? ''}` : ''}`, { advice: 'Close it from the VirtualBox Manager, then run the command again.' });
      }
    },

    async delete(ctx) {
      const vm = vmName(ctx.profile);
      const f = files(ctx);
      let vbm: VBoxManage | undefined;
      try {
        vbm = (await open(ctx)).vbm;
      } catch (e) {
        if (!isDevclusterError(e) || (e.id !== 'VBOX_NOT_FOUND' && e.id !== 'VBOX_VERSION_UNSUPPORTED')) throw e;
        ctx.report(`VirtualBox cannot be used (${e.message}): the profile's files are removed, but anything it registered in VirtualBox stays there`, 'warn');
      }
      if (vbm !== undefined) {
        // removeVm unregisters only a VM whose settings file is in this profile's folder, recorded or not.
        await removeVm(ctx, vbm, vm);
        await removeHostOnly(ctx, vbm);
      }
      await rm(f.disk, { force: true });
      await rm(f.baseFolder, { recursive: true, force: true });
      await ctx.state.forget(VM_RESOURCE, vm);
      await ctx.state.forget('file', f.disk);
      await vboxData.clear(ctx);
    },

    async state(ctx): Promise<VmState> {
      const { vbm } = await open(ctx);
      return vmState(vbm, vmName(ctx.profile), ctx.signal);
    },

    async address(ctx, wait): Promise<GuestAddress> {
      const d = data(ctx);
      if (d.forwards === undefined || d.hostOnly === undefined) throw new Error('virtualbox: address before ensureNetwork');
      const forwards = forwardEndpoints(d.forwards);
      if (d.hostOnly.kind !== 'hostonlynet') return { ip: d.hostOnly.guestIp, forwards, source: 'static' };
      const ip = await vmnetLease(ctx, d, wait);
      if (ip !== undefined) return { ip, forwards, source: 'dhcp-leases' };
      // SSH and the API server are forwarded on NIC1 anyway: the cluster works, only the host-only address is unknown.
      ctx.report(`no DHCP lease for the host-only NIC (${colonMac(d.macs?.[1] ?? '')}) in ${host.leasesPath ?? DHCPD_LEASES_PATH}; the guest is reached through its forwarded ports only`, 'warn');
      return { forwards, source: 'port-forward' };
    },

    async details(ctx): Promise<VmDetails> {
      const log = await readFile(files(ctx).vboxLog, 'utf8').catch(() => undefined);
      if (log === undefined) return {};
      return usedNem(log)
        ? { acceleration: { accelerator: 'nem', hardware: true, reason: 'VirtualBox runs on Hyper-V\'s API (NEM): slower than its own VT-x/AMD-V engine' } }
        : { acceleration: { accelerator: 'vt-x/amd-v', hardware: true, reason: 'VirtualBox\'s own hardware virtualization' } };
    },

    async crashReport(ctx): Promise<CrashReport> {
      const log = await logTail(files(ctx).vboxLog, 15);
      const verdict = explainVBoxLog(await readFile(files(ctx).vboxLog, 'utf8').catch(() => ''));
      const state = await driver.state(ctx).catch((e: unknown) => `unknown (${(e as Error).message})`);
      const cause = verdict !== undefined ? `VirtualBox stopped the VM: ${verdict.cause} (${verdict.code}). ${verdict.fix}` : `the VM is ${state} in VirtualBox (it crashed, was powered off, or the guest shut down)`;
      return { cause, ...(log === '' ? {} : { log }) };
    },

    baseMedia: {
      async inUse(ctx, path) {
        let vbm: VBoxManage;
        try {
          vbm = (await open(ctx)).vbm;
        } catch (e) {
          // Without VirtualBox nothing can hold the file.
          if (isDevclusterError(e) && e.id === 'VBOX_NOT_FOUND') return false;
          throw e;
        }
        return parseHdds((await vbm.run(['list', 'hdds'])).stdout).some((m) => samePath(m.location, path, ctx.platform));
      },
      async release(ctx, path) {
        const { vbm } = await open(ctx);
        await vbm.run(cmd.closeDiskArgs(path, false));
      },
    },
  };
  return driver;
}

/**
 * A VM of this name is this profile's only when its settings file is in the profile's folder (createvm --basefolder
 * put it there): VM names are global to the user's VirtualBox, shared by every DEVCLUSTER_HOME and by the user's own VMs.
 */
async function settingsInProfile(vbm: VBoxManage, vm: string, vmDir: string, platform: NodeJS.Platform): Promise<boolean> {
  const r = await vbm.run(cmd.showVmInfoArgs(vm), { allowFailure: true });
  if (r.failed) return false;
  const cfg = parseMachineReadable(r.stdout).get('CfgFile');
  if (cfg === undefined) return false;
  if (samePath(dirname(cfg), vmDir, platform)) return true;
  // The same folder through a symbolic link (macOS's /var -> /private/var, a linked home): compared once resolved.
  const [a, b] = await Promise.all([realpath(dirname(cfg)).catch(() => undefined), realpath(vmDir).catch(() => undefined)]);
  return a !== undefined && b !== undefined && samePath(a, b, platform);
}

function samePath(a: string | undefined, b: string, platform: NodeJS.Platform): boolean {
  if (a === undefined) return false;
  return platform === 'win32' ? a.toLowerCase() === b.toLowerCase() : a === b;
}

/** A legacy adapter is the recorded one when the name matches and, once its GUID is known, the GUID too. */
function sameAdapter(i: { name: string; guid?: string }, recorded: { name: string; guid?: string }): boolean {
  if (i.name !== recorded.name) return false;
  return recorded.guid === undefined || i.guid === undefined || i.guid.toLowerCase() === recorded.guid.toLowerCase();
}

/** VirtualBox 7's host-only network for a profile, named after the profile and its subnet ("devcluster-dev-192.168.56.0-24"). */
export function hostOnlyNetName(profile: string, subnet: string): string {
  return `${vmName(profile)}-${subnet.replace('/', '-')}`;
}

export const virtualboxDriver: Driver = createVirtualBoxDriver(LOCAL_HOST);

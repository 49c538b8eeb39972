import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DevclusterError } from '../../src/ui/errors.ts';
import type { DriverContext, NetworkPlan } from '../driver.ts';
import {
  NFT_FAMILY,
  NFT_TABLE,
  bridgeMac,
  bridgeMarker,
  chooseAddress,
  chooseSubnet,
  conflictsOf,
  dnsmasqArgs,
  expectedNftSignature,
  firewallBlockers,
  gatewayOf,
  hostNetworks,
  nftSignatureOf,
  renderNftRuleset,
  tapMarker,
  tapNameFor,
} from './bridged-plan.ts';
import type { DnsmasqFiles, FirewallBlocker, HostNet } from './bridged-plan.ts';
import { formatCidr, parseCidr } from '../../src/host/ipv4.ts';
import type { Ipv4Net } from '../../src/host/ipv4.ts';
import { bridgeDir, loadRegistry, reservationsOf, saveRegistry } from './bridged-registry.ts';
import { withNetworkLock } from '../../src/profile/host-network-lock.ts';
import type { BridgeEntry, NetworkRegistry } from './bridged-registry.ts';
import {
  addAddress,
  createBridge,
  createTap,
  deleteLink,
  enslaveUp,
  linkAddresses,
  listLinks,
  missingTools,
  nftApply,
  nftDeleteTable,
  nftOurTable,
  nftRuleset,
  ourDnsmasq,
  readSysctl,
  routesAndAddresses,
  setAlias,
  setUp,
  startDnsmasq,
  stopProcess,
  writeSysctl,
} from './linux-host.ts';
import type { LinkInfo } from './linux-host.ts';
import './errors.ts';

/**
 * QEMU bridged networking on Linux, the counterpart of the Hyper-V internal
 * switch + NAT: a bridge with the gateway address on a private subnet the host
 * does not use, one tap per VM, masquerading in devcluster's own nftables
 * table, IPv4 forwarding, and a dnsmasq for DHCP reservations and DNS on the
 * bridge only. The guest's address is fixed per profile and also rendered
 * into the seed, so the VM does not depend on DHCP.
 *
 * Every object is recorded in the profile's state before it is created
 * (kinds linux-bridge, linux-tap, linux-nft-table, linux-dnsmasq, linux-sysctl)
 * and, when shared, in $DEVCLUSTER_HOME/network/bridges.json, which knows
 * every profile on a bridge: the last one to leave removes the bridge,
 * dnsmasq, the nftables table and the ip_forward change. Interfaces carry an
 * alias naming devcluster; anything without it is someone else's and is
 * neither reused nor changed.
 */

const DEFAULT_BRIDGE = 'devcluster0';
const IP_FORWARD = 'net.ipv4.ip_forward';
const NFT_ID = `${NFT_FAMILY} ${NFT_TABLE}`;

interface BridgedSettings {
  bridge: string;
  subnet: string;
  staticIp: string;
}

function settingsOf(ctx: DriverContext): BridgedSettings {
  const text = (key: string, fallback: string) => {
    const v = ctx.settings[key];
    return typeof v === 'string' && v !== '' ? v : fallback;
  };
  return { bridge: text('qemu-bridge', DEFAULT_BRIDGE), subnet: text('subnet', 'auto'), staticIp: text('static-ip', 'auto') };
}

function requireLinuxRoot(command: 'start' | 'delete'): void {
  if (process.platform !== 'linux') {
    throw new DevclusterError('QEMU_BRIDGE_UNSUPPORTED', `--qemu-network=bridged is only available on Linux (this host is ${process.platform})`, {
      advice: 'Use the default --qemu-network=user: the VM is reached through port forwards on 127.0.0.1.',
    });
  }
  if (process.getuid?.() !== 0) {
    throw new DevclusterError('QEMU_BRIDGE_NEEDS_ROOT', 'bridged networking creates a bridge, a tap device, nftables rules and a DHCP server on the host, which needs root', {
      advice:
        command === 'start'
          ? 'Run `sudo devcluster start --qemu-network=bridged`, or use the default user-mode networking (--qemu-network=user), which needs no root.'
          : 'Run `sudo devcluster delete` so the bridge, tap device, nftables table and dnsmasq devcluster created can be removed.',
    });
  }
}

async function requireTools(): Promise<void> {
  const missing = await missingTools();
  if (missing.length === 0) return;
  throw new DevclusterError('HOST_COMMAND_NOT_FOUND', `bridged networking needs ${missing.map((m) => m.command).join(', ')}, not found on PATH`, {
    advice: `Install ${missing.map((m) => m.packages).join(', ')}; or use --qemu-network=user.`,
  });
}

/** A failing ip/nft/sysctl/dnsmasq call becomes NETWORK_SETUP_FAILED naming the step; the exec error stays the cause. */
async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DevclusterError && (e.id === 'HOST_COMMAND_FAILED' || e.id === 'HOST_COMMAND_TIMEOUT')) {
      throw new DevclusterError('NETWORK_SETUP_FAILED', `${what} failed: ${e.message}`, {
        cause: e,
        details: e.details,
        advice: 'The log file has the full command and its output. `sudo devcluster delete` removes what was created so far.',
      });
    }
    throw e;
  }
}

function now(): string {
  return new Date().toISOString();
}

function netOf(entry: BridgeEntry): Ipv4Net {
  const net = parseCidr(entry.subnet);
  if (net === undefined) throw new Error(`bridges.json: bad subnet ${entry.subnet}`);
  return net;
}

function describeLink(link: LinkInfo): string {
  return [link.kind ?? 'device', link.ifalias === undefined ? 'no alias' : `alias "${link.ifalias}"`, link.master === undefined ? '' : `in ${link.master}`]
    .filter((p) => p !== '')
    .join(', ');
}

/** Ours: marked with our alias, or unmarked while the registry says the mark is pending (a crash between add and alias). */
function bridgeIsOurs(home: string, link: LinkInfo, entry: BridgeEntry | undefined): boolean {
  if (entry === undefined) return false;
  if (link.ifalias === bridgeMarker(home)) return true;
  return link.ifalias === undefined && !entry.marked && link.kind === 'bridge';
}

function tapIsOurs(ctx: DriverContext, link: LinkInfo): boolean {
  if (link.ifalias === tapMarker(ctx.home, ctx.profile)) return true;
  return link.ifalias === undefined && link.kind === 'tun' && ctx.state.has('linux-tap', link.ifname);
}

function notOurs(what: string, name: string, link: LinkInfo, advice: string): DevclusterError {
  return new DevclusterError('NETWORK_NOT_OURS', `${what} ${name} already exists (${describeLink(link)}) and was not created by devcluster; devcluster does not modify interfaces it did not create`, {
    advice,
    details: { interface: name, ...link },
  });
}

function dnsmasqFiles(home: string, bridge: string): DnsmasqFiles {
  const dir = bridgeDir(home, bridge);
  return { pidFile: join(dir, 'dnsmasq.pid'), leaseFile: join(dir, 'dnsmasq.leases'), logFile: join(dir, 'dnsmasq.log') };
}

function planFor(mac: string, entry: BridgeEntry, ip: string): NetworkPlan {
  return {
    mode: 'bridged',
    mac,
    guestAddress: { kind: 'static', cidr: `${ip}/${netOf(entry).prefix}`, gateway: entry.gateway },
    dns: [entry.gateway],
    subnet: entry.subnet,
    gateway: entry.gateway,
  };
}

function otherBridgeNets(reg: NetworkRegistry, except: string): HostNet[] {
  return Object.entries(reg.bridges)
    .filter(([name]) => name !== except)
    .map(([name, e]) => ({ net: netOf(e), source: `devcluster bridge ${name}`, dev: name }));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Picks (or re-validates) the bridge's subnet; throws with what overlaps. */
function subnetFor(s: BridgedSettings, bridge: string, existing: BridgeEntry | undefined, inUse: HostNet[], others: HostNet[]): BridgeEntry {
  if (existing !== undefined) {
    if (s.subnet !== 'auto') {
      const wanted = parseCidr(s.subnet);
      if (wanted === undefined || formatCidr(wanted) !== existing.subnet) {
        throw new DevclusterError('NETWORK_SUBNET_IN_USE', `bridge ${bridge} already serves ${existing.subnet} (profiles: ${Object.keys(existing.users).join(', ') || 'none'}); subnet ${s.subnet} cannot be used on it`, {
          advice: `Use --subnet=auto or --subnet=${existing.subnet} to join that network, or --qemu-bridge=<another name> for a separate network with its own subnet.`,
        });
      }
    }
    const conflicts = conflictsOf(netOf(existing), [...inUse, ...others], bridge);
    if (conflicts.length > 0) {
      throw new DevclusterError('NETWORK_SUBNET_IN_USE', `the subnet ${existing.subnet} of bridge ${bridge} is now also used by the host (${conflicts.map((c) => c.source).join('; ')})`, {
        advice: `The host joined a network in the same range. Leave that network, or delete the profiles on ${bridge} (${Object.keys(existing.users).join(', ')}) and start them again so a free subnet is chosen.`,
      });
    }
    return existing;
  }
  const choice = chooseSubnet(s.subnet, inUse, others);
  if (choice.ok) return { subnet: formatCidr(choice.net), gateway: gatewayOf(choice.net), createdAt: now(), marked: false, users: {} };
  if (choice.reason === 'in-use') {
    throw new DevclusterError('NETWORK_SUBNET_IN_USE', `subnet ${s.subnet} overlaps a network this host already uses: ${choice.conflicts.map((c) => c.source).join('; ')}`, {
      advice: 'Choose a private subnet that `ip -4 route show table all` does not list, or --subnet=auto to let devcluster pick one.',
    });
  }
  throw new DevclusterError('NETWORK_SUBNET_EXHAUSTED', `every candidate subnet (192.168.211-239.0/24, 10.213.0-255.0/24; ${choice.tried} in all) overlaps a network this host already uses`, {
    advice: 'Give a free private subnet explicitly with --subnet=<cidr> (see `ip -4 route show table all` for what is taken).',
  });
}

async function ensureBridge(ctx: DriverContext, reg: NetworkRegistry, name: string, entry: BridgeEntry, link: LinkInfo | undefined): Promise<void> {
  const { signal, home } = ctx;
  if (link === undefined) {
    entry.marked = false;
    await saveRegistry(home, reg);
    await step(`creating bridge ${name}`, () => createBridge(name, bridgeMac(home, name), signal));
  }
  if (link?.ifalias === undefined) {
    await step(`marking bridge ${name}`, () => setAlias(name, bridgeMarker(home), signal));
    entry.marked = true;
    await saveRegistry(home, reg);
  }
  const gatewayCidr = `${entry.gateway}/${netOf(entry).prefix}`;
  const present = await step(`reading the addresses of ${name}`, () => linkAddresses(name, signal));
  if (!present.includes(gatewayCidr)) await step(`adding ${gatewayCidr} to ${name}`, () => addAddress(name, gatewayCidr, signal));
  if (link?.up !== true) await step(`bringing ${name} up`, () => setUp(name, signal));
}

/** Replaces devcluster's nftables table only when it is missing or differs from what the registry's bridges need. */
async function syncNft(ctx: DriverContext, reg: NetworkRegistry, current: unknown): Promise<void> {
  const bridges = Object.entries(reg.bridges).map(([bridge, e]) => ({ bridge, subnet: e.subnet }));
  if (current !== undefined && sameList(nftSignatureOf(current), expectedNftSignature(bridges))) return;
  await step(`writing the nftables table ${NFT_ID}`, () => nftApply(renderNftRuleset(bridges), ctx.signal));
}

async function ensureIpForward(ctx: DriverContext, reg: NetworkRegistry): Promise<void> {
  const current = await step(`reading ${IP_FORWARD}`, () => readSysctl(IP_FORWARD, ctx.signal));
  if (current !== '1') reg.ipForward ??= { previous: current, changedAt: now() };
  if (reg.ipForward === undefined) return; // already on, not by us: nothing to record or undo
  await ctx.state.record('linux-sysctl', IP_FORWARD, { previous: reg.ipForward.previous }, true);
  await saveRegistry(ctx.home, reg);
  if (current !== '1') await step(`enabling ${IP_FORWARD}`, () => writeSysctl(IP_FORWARD, '1', ctx.signal));
}

export function firewallWarning(b: FirewallBlocker, bridge: string): string {
  const where = `nftables chain ${b.family} ${b.table} ${b.chain} (${b.how})`;
  const firewalld = b.table === 'firewalld' ? ` With firewalld: \`firewall-cmd --zone=trusted --add-interface=${bridge}\`.` : '';
  if (b.hook === 'forward') {
    return (
      `the host firewall drops forwarded traffic by default, in ${where}: the VMs on ${bridge} may have no internet access. ` +
      `devcluster does not change other firewall tables; allow the bridge there, e.g. \`nft insert rule ${b.family} ${b.table} ${b.chain} iifname "${bridge}" accept\` ` +
      `and \`nft insert rule ${b.family} ${b.table} ${b.chain} oifname "${bridge}" ct state established,related accept\` (Docker hosts: the same as iptables rules in DOCKER-USER).${firewalld}`
    );
  }
  return (
    `the host firewall drops incoming traffic by default, in ${where}: DHCP and DNS from the VMs to dnsmasq on ${bridge} may be blocked. ` +
    `Allow them there, e.g. \`nft insert rule ${b.family} ${b.table} ${b.chain} iifname "${bridge}" meta l4proto { tcp, udp } th dport { 53, 67 } accept\`.${firewalld}`
  );
}

async function warnAboutFirewall(ctx: DriverContext, bridge: string): Promise<void> {
  // The check is advice only: a ruleset nft cannot print must not stop the VM.
  const ruleset = await nftRuleset(ctx.signal).catch(() => undefined);
  for (const b of firewallBlockers(ruleset)) ctx.report(firewallWarning(b, bridge), 'warn');
}

async function ensureTapDevice(ctx: DriverContext, tap: string, bridge: string, link: LinkInfo | undefined): Promise<void> {
  const { signal } = ctx;
  await ctx.state.record('linux-tap', tap, { bridge });
  if (link === undefined) await step(`creating tap device ${tap}`, () => createTap(tap, signal));
  if (link?.ifalias === undefined) await step(`marking tap device ${tap}`, () => setAlias(tap, tapMarker(ctx.home, ctx.profile), signal));
  if (link?.master !== bridge || !link.up) await step(`attaching ${tap} to ${bridge}`, () => enslaveUp(tap, bridge, signal));
}

/** One dnsmasq per bridge with every reservation on its command line; restarted only when that line changes. */
async function syncDnsmasq(ctx: DriverContext, bridge: string, entry: BridgeEntry): Promise<void> {
  const files = dnsmasqFiles(ctx.home, bridge);
  const args = dnsmasqArgs({ bridge, subnet: entry.subnet, files, hosts: reservationsOf(entry) });
  const running = await ourDnsmasq(files.pidFile);
  if (running !== undefined && sameList(running.args, args)) return;
  if (running !== undefined) await stopProcess(running.pid);
  await mkdir(bridgeDir(ctx.home, bridge), { recursive: true, mode: 0o700 });
  await step(`starting dnsmasq on ${bridge}`, () => startDnsmasq(args, ctx.signal));
}

async function stopDnsmasq(home: string, bridge: string): Promise<void> {
  const running = await ourDnsmasq(dnsmasqFiles(home, bridge).pidFile);
  if (running !== undefined) await stopProcess(running.pid);
}

async function ensureLocked(ctx: DriverContext, mac: string): Promise<{ plan: NetworkPlan; tap: string }> {
  const s = settingsOf(ctx);
  const { signal, home, profile } = ctx;
  const tap = tapNameFor(home, profile);
  const reg = await loadRegistry(home);

  // A profile stays on the bridge (and address) it was created with: its seed holds them.
  const registered = Object.entries(reg.bridges).find(([, e]) => profile in e.users)?.[0];
  const bridge = registered ?? s.bridge;
  if (registered !== undefined && registered !== s.bridge) {
    ctx.report(`qemu-bridge ${s.bridge} ignored: profile ${profile} stays on bridge ${registered}, which it was created with (delete the profile to move it)`, 'warn');
  }

  const links = await step('listing network interfaces', () => listLinks(signal));
  const link = links.get(bridge);
  const existing = reg.bridges[bridge];
  if (link !== undefined && !bridgeIsOurs(home, link, existing)) {
    throw notOurs('network interface', bridge, link, `Choose another bridge name with --qemu-bridge=<name> (e.g. devcluster1); devcluster only uses bridges it creates. Remove ${bridge} yourself only if you know it is unused.`);
  }
  const tapLink = links.get(tap);
  if (tapLink !== undefined && !tapIsOurs(ctx, tapLink)) {
    throw notOurs('network interface', tap, tapLink, `Remove ${tap} if it is a leftover (\`ip link del ${tap}\`), or use another profile name.`);
  }
  const table = await step(`reading the nftables table ${NFT_ID}`, () => nftOurTable(signal));
  if (table !== undefined && reg.nftTable === undefined) {
    throw new DevclusterError('NETWORK_NOT_OURS', `the nftables table ${NFT_ID} already exists and was not created by this devcluster home (${home})`, {
      advice: `Inspect it with \`nft list table ${NFT_ID}\`; if it is a leftover of devcluster, remove it with \`nft delete table ${NFT_ID}\` and start again.`,
    });
  }

  const { routes, addrs } = await step('reading routes and addresses', () => routesAndAddresses(signal));
  const entry = subnetFor(s, bridge, existing, hostNetworks(routes, addrs), otherBridgeNets(reg, bridge));
  const mine = entry.users[profile];
  let ip: string;
  if (mine !== undefined) {
    ip = mine.ip;
    if (s.staticIp !== 'auto' && s.staticIp !== ip) {
      ctx.report(`static-ip ${s.staticIp} ignored: profile ${profile} keeps ${ip}, the address it was created with (delete the profile to change it)`, 'warn');
    }
  } else {
    const taken = new Map(Object.entries(entry.users).map(([p, u]) => [u.ip, p]));
    const choice = chooseAddress(netOf(entry), s.staticIp, taken);
    if (!choice.ok) {
      throw new DevclusterError('NETWORK_ADDRESS_UNAVAILABLE', `no address for profile ${profile} on ${bridge}: ${choice.reason}`, {
        advice: `Use --static-ip=auto, or an unused host address inside ${entry.subnet}.`,
      });
    }
    ip = choice.ip;
  }
  entry.users[profile] = { mac, ip, tap };
  reg.bridges[bridge] = entry;

  await ctx.state.record('linux-bridge', bridge, { subnet: entry.subnet, gateway: entry.gateway }, true);
  await saveRegistry(home, reg);
  await ensureBridge(ctx, reg, bridge, entry, link);

  await ctx.state.record('linux-nft-table', NFT_ID, { family: NFT_FAMILY, table: NFT_TABLE }, true);
  if (reg.nftTable === undefined) {
    reg.nftTable = { createdAt: now() };
    await saveRegistry(home, reg);
  }
  await syncNft(ctx, reg, table);
  await ensureIpForward(ctx, reg);
  await warnAboutFirewall(ctx, bridge);

  await ensureTapDevice(ctx, tap, bridge, tapLink);

  await ctx.state.record('linux-dnsmasq', bridge, { pidFile: dnsmasqFiles(home, bridge).pidFile }, true);
  await syncDnsmasq(ctx, bridge, entry);
  return { plan: planFor(mac, entry, ip), tap };
}

async function teardownLocked(ctx: DriverContext): Promise<void> {
  const { signal, home, profile } = ctx;
  const mine = (ctx.state.state?.resources ?? []).filter((r) => r.kind.startsWith('linux-'));
  const reg = await loadRegistry(home);
  const links = await step('listing network interfaces', () => listLinks(signal));

  // The registry names this profile's tap too, so a profile whose state is lost still loses its tap.
  const taps = new Set([
    ...mine.filter((x) => x.kind === 'linux-tap').map((r) => r.id),
    ...Object.values(reg.bridges).flatMap((e) => (e.users[profile] === undefined ? [] : [e.users[profile].tap])),
  ]);
  for (const tap of taps) {
    const link = links.get(tap);
    if (link !== undefined && tapIsOurs(ctx, link)) await step(`removing tap device ${tap}`, () => deleteLink(tap, signal));
    else if (link !== undefined) ctx.report(`left ${tap} in place: it is not marked as devcluster's (${describeLink(link)})`, 'warn');
    await ctx.state.forget('linux-tap', tap);
  }

  const bridges = new Set([
    ...mine.filter((r) => r.kind === 'linux-bridge' || r.kind === 'linux-dnsmasq').map((r) => r.id),
    ...Object.entries(reg.bridges)
      .filter(([, e]) => profile in e.users)
      .map(([name]) => name),
  ]);
  let removedBridge = false;
  for (const name of bridges) {
    const entry = reg.bridges[name];
    if (entry !== undefined) {
      delete entry.users[profile];
      await saveRegistry(home, reg);
      if (Object.keys(entry.users).length === 0) {
        await stopDnsmasq(home, name);
        const link = links.get(name);
        if (link !== undefined && bridgeIsOurs(home, link, entry)) await step(`removing bridge ${name}`, () => deleteLink(name, signal));
        else if (link !== undefined) ctx.report(`left ${name} in place: it is not marked as devcluster's (${describeLink(link)})`, 'warn');
        delete reg.bridges[name];
        removedBridge = true;
        await saveRegistry(home, reg);
        await rm(bridgeDir(home, name), { recursive: true, force: true });
      } else if (links.has(name)) {
        await syncDnsmasq(ctx, name, entry);
      }
    }
    await ctx.state.forget('linux-dnsmasq', name);
    await ctx.state.forget('linux-bridge', name);
  }

  if (Object.keys(reg.bridges).length === 0) {
    if (reg.nftTable !== undefined) {
      if ((await step(`reading the nftables table ${NFT_ID}`, () => nftOurTable(signal))) !== undefined) {
        await step(`removing the nftables table ${NFT_ID}`, () => nftDeleteTable(signal));
      }
      delete reg.nftTable;
      await saveRegistry(home, reg);
    }
    if (reg.ipForward !== undefined) {
      const previous = reg.ipForward.previous;
      // Restored only while it is still what devcluster set: someone who changed it since wins.
      const current = await step(`reading ${IP_FORWARD}`, () => readSysctl(IP_FORWARD, signal));
      if (current === '1' && previous !== '1') await step(`restoring ${IP_FORWARD}=${previous}`, () => writeSysctl(IP_FORWARD, previous, signal));
      delete reg.ipForward;
      await saveRegistry(home, reg);
    }
  } else if (removedBridge && reg.nftTable !== undefined) {
    await syncNft(ctx, reg, await step(`reading the nftables table ${NFT_ID}`, () => nftOurTable(signal)));
  }
  await ctx.state.forget('linux-nft-table', NFT_ID);
  await ctx.state.forget('linux-sysctl', IP_FORWARD);
}

export const bridgedNetwork = {
  /** Creates what is missing (bridge, nft table, ip_forward, tap, dnsmasq) and returns the VM's static plan. */
  async ensure(ctx: DriverContext, mac: string): Promise<{ plan: NetworkPlan; tap: string }> {
    requireLinuxRoot('start');
    await requireTools();
    return withNetworkLock(ctx.home, ctx.signal, () => ensureLocked(ctx, mac));
  },

  /**
   * Before each VM start: the tap exists, is up and is in the bridge. A reboot
   * removes bridge, tap, nft table and dnsmasq alike; when the bridge is gone
   * too, the whole network is set up again from the registry.
   */
  async ensureTap(ctx: DriverContext, tap: string): Promise<void> {
    requireLinuxRoot('start');
    await requireTools();
    await withNetworkLock(ctx.home, ctx.signal, async () => {
      const reg = await loadRegistry(ctx.home);
      const found = Object.entries(reg.bridges).find(([, e]) => e.users[ctx.profile]?.tap === tap);
      if (found === undefined) {
        throw new DevclusterError('NETWORK_SETUP_FAILED', `tap device ${tap} of profile ${ctx.profile} is not registered on any devcluster bridge`, {
          advice: 'Run `sudo devcluster start` again: it sets up the network before it starts the VM.',
        });
      }
      const [bridge, entry] = found;
      const links = await step('listing network interfaces', () => listLinks(ctx.signal));
      const user = entry.users[ctx.profile];
      if (!links.has(bridge) && user !== undefined) {
        await ensureLocked(ctx, user.mac);
        return;
      }
      const link = links.get(tap);
      if (link !== undefined && !tapIsOurs(ctx, link)) {
        throw notOurs('network interface', tap, link, `Remove ${tap} if it is a leftover (\`ip link del ${tap}\`), or use another profile name.`);
      }
      await ensureTapDevice(ctx, tap, bridge, link);
    });
  },

  /**
   * Removes this profile's tap and reservation; the last profile on a bridge
   * also removes the bridge and its dnsmasq, and the last on the host the
   * nftables table and the ip_forward change. Only what the state or the
   * registry says devcluster made is touched.
   */
  async teardown(ctx: DriverContext): Promise<void> {
    const recorded = (ctx.state.state?.resources ?? []).some((r) => r.kind.startsWith('linux-'));
    const registered = process.platform === 'linux' && Object.values((await loadRegistry(ctx.home)).bridges).some((e) => ctx.profile in e.users);
    if (!recorded && !registered) return;
    requireLinuxRoot('delete');
    await withNetworkLock(ctx.home, ctx.signal, () => teardownLocked(ctx));
  },
};

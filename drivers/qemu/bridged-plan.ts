import { createHash } from 'node:crypto';
import { broadcastOf, formatCidr, intToIpv4, ipv4ToInt, isIpv4, netContainsAddress, netmaskOf, netsOverlap, parseCidr } from '../../src/host/ipv4.ts';
import type { Ipv4Net } from '../../src/host/ipv4.ts';


/**
 * The pure half of QEMU bridged networking on Linux: which subnet, which
 * address, which names, and the exact nftables ruleset and dnsmasq command
 * line. Everything here is decided from data; linux-host.ts does the I/O.
 */

/** A network the host already uses, with where it was seen (for messages). */
export interface HostNet {
  net: Ipv4Net;
  source: string;
  dev?: string;
}

export const NFT_FAMILY = 'ip';
export const NFT_TABLE = 'devcluster';
export const HOST_RECORD = 'host.devcluster.internal';

export function gatewayOf(n: Ipv4Net): string {
  return intToIpv4(n.base + 1);
}

/** Guests start at .10 where the subnet has room for it, else right after the gateway. */
export function firstGuestOf(n: Ipv4Net): number {
  return n.prefix <= 27 ? n.base + 10 : n.base + 2;
}

/**
 * The subnets `subnet=auto` tries, in order: a block of 192.168.x.0/24 that
 * home routers rarely use, then 10.213.x.0/24.
 */
export function candidateSubnets(): Ipv4Net[] {
  const out: Ipv4Net[] = [];
  for (let x = 211; x <= 239; x += 1) out.push({ base: ipv4ToInt(`192.168.${x}.0`), prefix: 24 });
  for (let x = 0; x <= 255; x += 1) out.push({ base: ipv4ToInt(`10.213.${x}.0`), prefix: 24 });
  return out;
}

interface RouteJson {
  dst?: string;
  dev?: string;
  type?: string;
  table?: string;
  gateway?: string;
}

interface AddrJson {
  ifname?: string;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

/**
 * The networks in use, from `ip -j -4 route show table all` and
 * `ip -j -4 addr show`. Routes shorter than /8 are the halves of a VPN's
 * "redirect everything" (0.0.0.0/1 + 128.0.0.0/1): they overlap every
 * candidate but a connected /24 is more specific and wins, so they are skipped
 * like the default route.
 */
export function hostNetworks(routes: unknown, addrs: unknown): HostNet[] {
  const out: HostNet[] = [];
  for (const r of Array.isArray(routes) ? (routes as RouteJson[]) : []) {
    if (r.dst === undefined || r.dst === 'default') continue;
    const net = parseCidr(r.dst);
    if (net === undefined || net.prefix < 8) continue;
    const where = [r.type !== undefined && r.type !== 'unicast' ? r.type : '', 'route', r.dst, r.gateway === undefined ? '' : `via ${r.gateway}`, r.dev === undefined ? '' : `dev ${r.dev}`, r.table === undefined ? '' : `table ${r.table}`];
    out.push({ net, source: where.filter((w) => w !== '').join(' '), ...(r.dev === undefined ? {} : { dev: r.dev }) });
  }
  for (const a of Array.isArray(addrs) ? (addrs as AddrJson[]) : []) {
    for (const info of a.addr_info ?? []) {
      if (info.family !== 'inet' || info.local === undefined || info.prefixlen === undefined) continue;
      const net = parseCidr(`${info.local}/${info.prefixlen}`);
      if (net === undefined || net.prefix < 8) continue;
      out.push({ net, source: `address ${info.local}/${info.prefixlen} on ${a.ifname ?? '?'}`, ...(a.ifname === undefined ? {} : { dev: a.ifname }) });
    }
  }
  return out;
}

export function conflictsOf(net: Ipv4Net, inUse: readonly HostNet[], ignoreDev?: string): HostNet[] {
  return inUse.filter((h) => (ignoreDev === undefined || h.dev !== ignoreDev) && netsOverlap(net, h.net));
}

export type SubnetChoice =
  | { ok: true; net: Ipv4Net }
  | { ok: false; reason: 'in-use'; conflicts: HostNet[] }
  | { ok: false; reason: 'exhausted'; tried: number };

/**
 * An explicit subnet must not overlap anything the host routes to (or another
 * devcluster bridge); `auto` takes the first candidate that overlaps nothing.
 */
export function chooseSubnet(requested: string, inUse: readonly HostNet[], otherBridges: readonly HostNet[]): SubnetChoice {
  const all = [...inUse, ...otherBridges];
  if (requested !== 'auto') {
    const net = parseCidr(requested);
    if (net === undefined) throw new Error(`chooseSubnet: ${requested} is not a CIDR`);
    const conflicts = conflictsOf(net, all);
    return conflicts.length === 0 ? { ok: true, net } : { ok: false, reason: 'in-use', conflicts };
  }
  const candidates = candidateSubnets();
  for (const net of candidates) if (conflictsOf(net, all).length === 0) return { ok: true, net };
  return { ok: false, reason: 'exhausted', tried: candidates.length };
}

export type AddressChoice = { ok: true; ip: string } | { ok: false; reason: string };

/**
 * A fixed guest address: the requested one if it is a usable host address
 * of the subnet and nobody else holds it, else the lowest free one from .10.
 */
export function chooseAddress(net: Ipv4Net, requested: string, taken: ReadonlyMap<string, string>): AddressChoice {
  const gateway = net.base + 1;
  const last = broadcastOf(net) - 1;
  if (requested !== 'auto') {
    if (!isIpv4(requested)) return { ok: false, reason: `${requested} is not an IPv4 address` };
    const ip = ipv4ToInt(requested);
    if (!netContainsAddress(net, ip)) return { ok: false, reason: `${requested} is outside the bridge's subnet ${formatCidr(net)}` };
    if (ip === net.base || ip === gateway || ip > last) return { ok: false, reason: `${requested} is the network, gateway or broadcast address of ${formatCidr(net)}` };
    const holder = taken.get(requested);
    if (holder !== undefined) return { ok: false, reason: `${requested} is already used by profile ${holder}` };
    return { ok: true, ip: requested };
  }
  for (let ip = firstGuestOf(net); ip <= last; ip += 1) {
    const text = intToIpv4(ip);
    if (!taken.has(text)) return { ok: true, ip: text };
  }
  return { ok: false, reason: `every address of ${formatCidr(net)} is taken` };
}

function shortHash(text: string, hexChars: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, hexChars);
}

/** Identifies one $DEVCLUSTER_HOME in interface aliases, so two homes never claim each other's devices. */
export function homeId(home: string): string {
  return shortHash(home, 8);
}

/** `dc-` + 12 hex characters: 15, the kernel's limit for interface names. */
export function tapNameFor(home: string, profile: string): string {
  return `dc-${shortHash(`${home}\0${profile}`, 12)}`;
}

/**
 * Interface aliases (`ip link set ... alias`) mark what devcluster created:
 * a bridge or tap without our mark is someone else's and is never changed.
 */
export function bridgeMarker(home: string): string {
  return `devcluster bridge ${homeId(home)}`;
}

export function tapMarker(home: string, profile: string): string {
  return `devcluster tap ${homeId(home)} ${profile}`;
}

/** A fixed, locally administered MAC for the bridge, so the gateway's MAC does not change as VMs come and go. */
export function bridgeMac(home: string, bridge: string): string {
  const h = createHash('sha256').update(`${home}\0bridge\0${bridge}`).digest();
  return ['52', '54', '01', ...[0, 1, 2].map((i) => (h[i] ?? 0).toString(16).padStart(2, '0'))].join(':');
}

const IFNAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;

export interface BridgeNat {
  bridge: string;
  subnet: string;
}

/**
 * devcluster's own nftables table, replaced as a whole in one transaction
 * (create-if-missing, delete, define), so no other table is ever touched.
 *
 * The forward accepts are for counting and intent only: nftables runs every
 * base chain on a hook, and a packet accepted here is still dropped if any
 * other table's forward chain drops it. That is why a drop policy elsewhere is
 * reported (forwardBlockers) instead of being worked around.
 */
export function renderNftRuleset(bridges: readonly BridgeNat[]): string {
  const sorted = [...bridges].sort((a, b) => (a.bridge < b.bridge ? -1 : a.bridge > b.bridge ? 1 : 0));
  const nat: string[] = [];
  const fwd: string[] = [];
  for (const b of sorted) {
    if (!IFNAME.test(b.bridge)) throw new Error(`renderNftRuleset: bad interface name ${b.bridge}`);
    const net = parseCidr(b.subnet);
    if (net === undefined) throw new Error(`renderNftRuleset: bad subnet ${b.subnet}`);
    const cidr = formatCidr(net);
    // Only what leaves the host through another interface: DHCP broadcasts and multicast on the bridge itself need no NAT.
    nat.push(`    ip saddr ${cidr} ip daddr != ${cidr} oifname != "${b.bridge}" counter masquerade`);
    fwd.push(`    iifname "${b.bridge}" counter accept`, `    oifname "${b.bridge}" counter accept`);
  }
  return [
    `table ${NFT_FAMILY} ${NFT_TABLE}`,
    `delete table ${NFT_FAMILY} ${NFT_TABLE}`,
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    ...nat,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    ...fwd,
    '  }',
    '}',
    '',
  ].join('\n');
}

interface NftItem {
  table?: { family: string; name: string };
  chain?: { family: string; table: string; name: string; type?: string; hook?: string; prio?: number; policy?: string };
  rule?: { family: string; table: string; chain: string; expr?: unknown[] };
}

function nftItems(json: unknown): NftItem[] {
  const list = (json as { nftables?: unknown } | undefined)?.nftables;
  return Array.isArray(list) ? (list as NftItem[]) : [];
}

/** One line per chain and rule of our table, in a form both the ruleset and `nft -j` output reduce to. */
export function nftSignatureOf(json: unknown): string[] {
  const out: string[] = [];
  for (const item of nftItems(json)) {
    if (item.chain !== undefined && item.chain.family === NFT_FAMILY && item.chain.table === NFT_TABLE) {
      const c = item.chain;
      out.push(`chain ${c.name} ${c.type ?? ''} ${c.hook ?? ''} ${c.prio ?? ''} ${c.policy ?? ''}`);
    }
    if (item.rule !== undefined && item.rule.family === NFT_FAMILY && item.rule.table === NFT_TABLE) {
      out.push(`rule ${item.rule.chain} ${ruleSummary(item.rule.expr ?? [])}`);
    }
  }
  return out.sort();
}

function ruleSummary(expr: unknown[]): string {
  const parts: string[] = [];
  for (const e of expr as Array<Record<string, unknown>>) {
    const m = e['match'] as { op?: string; left?: Record<string, unknown>; right?: unknown } | undefined;
    if (m !== undefined) {
      const left = m.left ?? {};
      const leftText =
        'payload' in left ? `ip ${(left['payload'] as { field?: string }).field ?? '?'}` : 'meta' in left ? String((left['meta'] as { key?: string }).key) : JSON.stringify(left);
      const r = m.right as { prefix?: { addr: string; len: number } } | string | undefined;
      const rightText = typeof r === 'object' && r?.prefix !== undefined ? `${r.prefix.addr}/${r.prefix.len}` : String(r);
      parts.push(`${leftText} ${m.op ?? '=='} ${rightText}`);
    } else if ('counter' in e) {
      parts.push('counter');
    } else {
      parts.push(Object.keys(e).join('+'));
    }
  }
  return parts.join(' ');
}

/** The signature `nft -j list table ip devcluster` shows once renderNftRuleset(bridges) is applied. */
export function expectedNftSignature(bridges: readonly BridgeNat[]): string[] {
  const out = ['chain postrouting nat postrouting 100 accept', 'chain forward filter forward 0 accept'];
  for (const b of bridges) {
    const cidr = formatCidr(parseCidr(b.subnet) ?? { base: 0, prefix: 0 });
    out.push(`rule postrouting ip saddr == ${cidr} ip daddr != ${cidr} oifname != ${b.bridge} counter masquerade`);
    out.push(`rule forward iifname == ${b.bridge} counter accept`, `rule forward oifname == ${b.bridge} counter accept`);
  }
  return out.sort();
}

export function nftHasTable(json: unknown): boolean {
  return nftItems(json).some((i) => i.table !== undefined && i.table.family === NFT_FAMILY && i.table.name === NFT_TABLE);
}

export interface FirewallBlocker {
  hook: 'forward' | 'input';
  family: string;
  table: string;
  chain: string;
  /** "policy drop" or the final rule's verdict. */
  how: string;
}

const NEUTRAL = new Set(['counter', 'log', 'limit']);

/**
 * Base chains of other tables that, by default, drop what the VM sends
 * through the host (forward) or to dnsmasq on the bridge (input): a drop
 * policy, or a last rule that rejects or drops unconditionally (firewalld's
 * pattern). Rules before it may well allow the bridge, so this is a hint.
 */
export function firewallBlockers(rulesetJson: unknown): FirewallBlocker[] {
  const items = nftItems(rulesetJson);
  const out: FirewallBlocker[] = [];
  for (const item of items) {
    const c = item.chain;
    if (c === undefined || (c.hook !== 'forward' && c.hook !== 'input') || c.type !== 'filter') continue;
    if (c.family === NFT_FAMILY && c.table === NFT_TABLE) continue;
    if (c.family !== 'ip' && c.family !== 'inet') continue;
    const hook: FirewallBlocker['hook'] = c.hook;
    const base = { hook, family: c.family, table: c.table, chain: c.name };
    if (c.policy === 'drop') {
      out.push({ ...base, how: 'policy drop' });
      continue;
    }
    const rules = items.filter((i) => i.rule !== undefined && i.rule.family === c.family && i.rule.table === c.table && i.rule.chain === c.name);
    const lastExpr = rules.at(-1)?.rule?.expr as Array<Record<string, unknown>> | undefined;
    if (lastExpr === undefined) continue;
    const significant = lastExpr.filter((e) => !Object.keys(e).every((k) => NEUTRAL.has(k)));
    const only = significant.length === 1 ? Object.keys(significant[0] ?? {})[0] : undefined;
    if (only === 'drop' || only === 'reject') out.push({ ...base, how: `final rule ${only}` });
  }
  return out;
}

export interface DhcpReservation {
  mac: string;
  ip: string;
}

export interface DnsmasqFiles {
  pidFile: string;
  leaseFile: string;
  logFile: string;
}

/**
 * dnsmasq for one bridge only: DHCP hands out nothing but the reservations
 * (`static` range), DNS forwards to the servers in the host's
 * /etc/resolv.conf (re-read when it changes; with systemd-resolved that is the
 * 127.0.0.53 stub, which dnsmasq on the host can reach). --conf-file=/dev/null
 * keeps a host-wide /etc/dnsmasq.conf out; --no-hosts keeps the host's
 * /etc/hosts (127.0.1.1 entries) away from the guest. --bind-dynamic rather than
 * --bind-interfaces: the bridge's IPv6 link-local address appears only once a
 * VM's tap brings the link up, and bind-interfaces fails on a tentative one.
 */
export function dnsmasqArgs(o: { bridge: string; subnet: string; files: DnsmasqFiles; hosts: readonly DhcpReservation[] }): string[] {
  if (!IFNAME.test(o.bridge)) throw new Error(`dnsmasqArgs: bad interface name ${o.bridge}`);
  const net = parseCidr(o.subnet);
  if (net === undefined) throw new Error(`dnsmasqArgs: bad subnet ${o.subnet}`);
  const gateway = gatewayOf(net);
  const hosts = [...o.hosts].sort((a, b) => ipv4ToInt(a.ip) - ipv4ToInt(b.ip));
  return [
    '--conf-file=/dev/null',
    `--pid-file=${o.files.pidFile}`,
    `--dhcp-leasefile=${o.files.leaseFile}`,
    `--log-facility=${o.files.logFile}`,
    `--interface=${o.bridge}`,
    '--bind-dynamic',
    '--except-interface=lo',
    `--dhcp-range=${intToIpv4(net.base)},static,${netmaskOf(net)},12h`,
    ...hosts.map((h) => `--dhcp-host=${h.mac},${h.ip}`),
    `--dhcp-option=option:router,${gateway}`,
    `--dhcp-option=option:dns-server,${gateway}`,
    '--dhcp-authoritative',
    '--resolv-file=/etc/resolv.conf',
    '--no-hosts',
    `--host-record=${HOST_RECORD},${gateway}`,
  ];
}

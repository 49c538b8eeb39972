import { formatCidr, intToIpv4, isIpv4, netsOverlap, parseCidr } from '../../src/host/ipv4.ts';
import type { Ipv4Net } from '../../src/host/ipv4.ts';
import { asBoolean, booleanField, normalizeMac, numberField, records, stringField } from './output.ts';

/**
 * The Windows host's network as the Hyper-V driver plans around it: NetNats,
 * IPv4 routes and addresses, adapters (VPN clients among them) and the
 * neighbor cache; and the pure planning on top: which /24 our NAT can take,
 * and whether an existing NetNat can be reused or is in the way. The queries
 * are constants (no user value enters them; filtering happens here), so the
 * contract test parses each and checks every cmdlet and parameter.
 */

// ---------------------------------------------------------------------------
// Queries: pipelines for src/host/powershell.ts, each wrapped in @(...) so one
// result is still a list.

export const NET_NAT_QUERY = "@(NetNat\\Get-NetNat | Microsoft.PowerShell.Utility\\Select-Object -Property 'Name', 'InternalIPInterfaceAddressPrefix', 'Active')";
export const ROUTES_QUERY = "@(NetTCPIP\\Get-NetRoute -AddressFamily IPv4 | Microsoft.PowerShell.Utility\\Select-Object -Property 'DestinationPrefix', 'NextHop', 'InterfaceAlias', 'InterfaceIndex')";
export const HOST_ADDRESSES_QUERY = "@(NetTCPIP\\Get-NetIPAddress -AddressFamily IPv4 | Microsoft.PowerShell.Utility\\Select-Object -Property 'IPAddress', 'PrefixLength', 'InterfaceAlias', 'InterfaceIndex')";
export const NET_ADAPTERS_QUERY =
  "@(NetAdapter\\Get-NetAdapter | Microsoft.PowerShell.Utility\\Select-Object -Property 'Name', 'InterfaceDescription', 'ifIndex', 'Status', 'MacAddress', 'DeviceID', 'Virtual')";
export const NEIGHBORS_QUERY = "@(NetTCPIP\\Get-NetNeighbor -AddressFamily IPv4 | Microsoft.PowerShell.Utility\\Select-Object -Property 'IPAddress', 'LinkLayerAddress', 'State', 'InterfaceIndex')";

/** Every query above, by name, for the script catalog and the contract test. */
export const HOST_NETWORK_QUERIES = {
  netNats: NET_NAT_QUERY,
  routes: ROUTES_QUERY,
  hostAddresses: HOST_ADDRESSES_QUERY,
  netAdapters: NET_ADAPTERS_QUERY,
  neighbors: NEIGHBORS_QUERY,
} as const;

// ---------------------------------------------------------------------------
// Parsers

export interface NetNatInfo {
  name: string;
  /** As Windows prints it ("172.31.240.0/24"); may be IPv6 for a NAT66. */
  internalPrefix: string;
  active: boolean;
}

export interface HostRoute {
  destinationPrefix: string;
  interfaceAlias: string;
  interfaceIndex: number;
  nextHop?: string;
}

export interface HostAddress {
  ipAddress: string;
  prefixLength: number;
  interfaceAlias: string;
  interfaceIndex: number;
}

export interface NetAdapterInfo {
  name: string;
  interfaceDescription: string;
  ifIndex: number;
  /** Up, Disconnected, Disabled, Not Present, ... (Get-NetAdapter's Status is already text). */
  status: string;
  /** Twelve upper-case hex digits. */
  macAddress?: string;
  /** "{GUID}": what Get-VMNetworkAdapter -ManagementOS's DeviceId names. */
  deviceId?: string;
  virtual?: boolean;
}

export type NeighborState = 'unreachable' | 'incomplete' | 'probe' | 'delay' | 'stale' | 'reachable' | 'permanent';
/** MSFT_NetNeighbor.State. */
const NEIGHBOR_STATES: Readonly<Record<number, NeighborState>> = { 0: 'unreachable', 1: 'incomplete', 2: 'probe', 3: 'delay', 4: 'stale', 5: 'reachable', 6: 'permanent' };

export interface NeighborInfo {
  ipAddress: string;
  /** Twelve upper-case hex digits; absent for an entry still resolving. */
  linkLayerAddress?: string;
  state?: NeighborState;
  interfaceIndex?: number;
}

/** `Get-NetNat | Select-Object Name, InternalIPInterfaceAddressPrefix, Active` */
export function parseNetNats(json: unknown): NetNatInfo[] {
  const out: NetNatInfo[] = [];
  for (const row of records(json)) {
    const name = stringField(row, 'Name');
    const internalPrefix = stringField(row, 'InternalIPInterfaceAddressPrefix');
    if (name === undefined || internalPrefix === undefined || internalPrefix.trim() === '') continue;
    // Get-NetNat's Active is a boolean; a NAT the stack has not activated is still one Windows refuses to overlap.
    out.push({ name, internalPrefix: internalPrefix.trim(), active: booleanField(row, 'Active') ?? true });
  }
  return out;
}

/** `Get-NetRoute -AddressFamily IPv4 | Select-Object DestinationPrefix, NextHop, InterfaceAlias, InterfaceIndex` */
export function parseRoutes(json: unknown): HostRoute[] {
  const out: HostRoute[] = [];
  for (const row of records(json)) {
    const destinationPrefix = stringField(row, 'DestinationPrefix');
    if (destinationPrefix === undefined || parseCidr(destinationPrefix) === undefined) continue;
    const nextHop = stringField(row, 'NextHop');
    out.push({
      destinationPrefix: destinationPrefix.trim(),
      interfaceAlias: stringField(row, 'InterfaceAlias') ?? '',
      interfaceIndex: numberField(row, 'InterfaceIndex') ?? numberField(row, 'ifIndex') ?? -1,
      ...(nextHop === undefined || nextHop === '0.0.0.0' || nextHop === '' ? {} : { nextHop }),
    });
  }
  return out;
}

/** `Get-NetIPAddress -AddressFamily IPv4 | Select-Object IPAddress, PrefixLength, InterfaceAlias, InterfaceIndex`; IPv6 rows are dropped. */
export function parseHostAddresses(json: unknown): HostAddress[] {
  const out: HostAddress[] = [];
  for (const row of records(json)) {
    const ipAddress = stringField(row, 'IPAddress')?.trim();
    const prefixLength = numberField(row, 'PrefixLength');
    if (ipAddress === undefined || !isIpv4(ipAddress) || prefixLength === undefined || prefixLength < 0 || prefixLength > 32) continue;
    out.push({
      ipAddress,
      prefixLength,
      interfaceAlias: stringField(row, 'InterfaceAlias') ?? '',
      interfaceIndex: numberField(row, 'InterfaceIndex') ?? numberField(row, 'ifIndex') ?? -1,
    });
  }
  return out;
}

/** `Get-NetAdapter | Select-Object Name, InterfaceDescription, ifIndex, Status, MacAddress, DeviceID, Virtual` */
export function parseNetAdapters(json: unknown): NetAdapterInfo[] {
  const out: NetAdapterInfo[] = [];
  for (const row of records(json)) {
    const name = stringField(row, 'Name');
    const ifIndex = numberField(row, 'ifIndex') ?? numberField(row, 'InterfaceIndex');
    if (name === undefined || ifIndex === undefined) continue;
    const macAddress = normalizeMac(stringField(row, 'MacAddress'));
    const deviceId = stringField(row, 'DeviceID') ?? stringField(row, 'DeviceId');
    const virtual = asBoolean(row['Virtual']);
    out.push({
      name,
      interfaceDescription: stringField(row, 'InterfaceDescription') ?? '',
      ifIndex,
      status: stringField(row, 'Status') ?? '',
      ...(macAddress === undefined ? {} : { macAddress }),
      ...(deviceId === undefined ? {} : { deviceId: deviceId.toUpperCase() }),
      ...(virtual === undefined ? {} : { virtual }),
    });
  }
  return out;
}

/** `Get-NetNeighbor -AddressFamily IPv4 | Select-Object IPAddress, LinkLayerAddress, State, InterfaceIndex` */
export function parseNeighbors(json: unknown): NeighborInfo[] {
  const out: NeighborInfo[] = [];
  for (const row of records(json)) {
    const ipAddress = stringField(row, 'IPAddress')?.trim();
    if (ipAddress === undefined || !isIpv4(ipAddress)) continue;
    const mac = normalizeMac(stringField(row, 'LinkLayerAddress'));
    const stateValue = row['State'];
    const state =
      typeof stateValue === 'number'
        ? NEIGHBOR_STATES[stateValue]
        : typeof stateValue === 'string'
          ? Object.values(NEIGHBOR_STATES).find((s) => s === stateValue.trim().toLowerCase())
          : undefined;
    const interfaceIndex = numberField(row, 'InterfaceIndex') ?? numberField(row, 'ifIndex');
    out.push({
      ipAddress,
      ...(mac === undefined || mac === '000000000000' ? {} : { linkLayerAddress: mac }),
      ...(state === undefined ? {} : { state }),
      ...(interfaceIndex === undefined ? {} : { interfaceIndex }),
    });
  }
  return out;
}

/**
 * The guest's address from the host's neighbor cache, for a MAC in any
 * spelling (00155DC0FF01, 00-15-5D-C0-FF-01): an entry the stack has not
 * given up on (not unreachable or incomplete). The fallback when KVP reports
 * nothing (no hv_kvp_daemon in the guest).
 */
export function neighborAddressFor(neighbors: readonly NeighborInfo[], mac: string): string | undefined {
  const wanted = normalizeMac(mac);
  if (wanted === undefined) return undefined;
  const usable = neighbors.filter((n) => n.linkLayerAddress === wanted && n.state !== 'unreachable' && n.state !== 'incomplete' && !n.ipAddress.startsWith('169.254.'));
  const rank = (n: NeighborInfo) => (n.state === 'reachable' || n.state === 'permanent' ? 0 : 1);
  return [...usable].sort((a, b) => rank(a) - rank(b))[0]?.ipAddress;
}

/** The host adapter behind a Hyper-V switch's management vNIC, by DeviceId (its "vEthernet (name)" alias is localized and renameable). */
export function adapterByDeviceId(adapters: readonly NetAdapterInfo[], deviceId: string): NetAdapterInfo | undefined {
  const wanted = deviceId.trim().toUpperCase();
  return adapters.find((a) => a.deviceId === wanted);
}

// ---------------------------------------------------------------------------
// VPN adapters

/**
 * Interface descriptions (and names) of VPN clients' virtual adapters: Cisco
 * AnyConnect / Secure Client, GlobalProtect (PANGP), FortiClient, OpenVPN and
 * its TAP-Windows driver, WireGuard and Wintun, Pulse/Ivanti, Check Point,
 * SonicWall, Zscaler, NordLynx, and any adapter calling itself VPN. Windows'
 * own VPN connections have no such adapter: their routes are what shows them.
 */
const VPN_PATTERN =
  /\b(vpn|anyconnect|secure client|pangp|globalprotect|forti(client|net)?|tap-windows|tap-\w+|openvpn|wireguard|wintun|pulse secure|ivanti|juniper|check ?point|sonicwall|zscaler|nordlynx)\b/i;

export function isVpnAdapter(adapter: NetAdapterInfo): boolean {
  return VPN_PATTERN.test(adapter.interfaceDescription) || VPN_PATTERN.test(adapter.name);
}

/** VPN adapters that are connected (Status Up). */
export function connectedVpnAdapters(adapters: readonly NetAdapterInfo[]): NetAdapterInfo[] {
  return adapters.filter((a) => /^up$/i.test(a.status) && isVpnAdapter(a));
}

/** Routes (other than a default route) that send part of `subnet` to another interface than ours. */
export function routesOverlapping(routes: readonly HostRoute[], subnet: string, ownInterfaceIndexes: readonly number[] = []): HostRoute[] {
  const net = parseCidr(subnet);
  if (net === undefined) return [];
  return routes.filter((r) => {
    const dest = parseCidr(r.destinationPrefix);
    return dest !== undefined && dest.prefix > 0 && !isIgnoredRoute(dest) && !ownInterfaceIndexes.includes(r.interfaceIndex) && netsOverlap(dest, net);
  });
}

/** Multicast and the limited broadcast sit on every interface and overlap nothing we could pick. */
function isIgnoredRoute(dest: Ipv4Net): boolean {
  const first = dest.base >>> 24;
  return (first >= 224 && dest.prefix >= 4) || first === 127;
}

// ---------------------------------------------------------------------------
// Planning: the NAT subnet

/** Our default: the top of 172.16.0.0/12, far from the 192.168.x home LANs and the low 172.x ranges Docker and WSL take first. */
export const DEFAULT_NAT_SUBNET = '172.31.240.0/24';

export interface NatPlan {
  subnet: string;
  gateway: string;
  guest: string;
}

export interface TakenNetworks {
  routes: HostRoute[];
  addresses: HostAddress[];
  nats: NetNatInfo[];
  /**
   * Interfaces that are ours (the devcluster switch's vEthernet adapter): their
   * routes and addresses are our existing plan, not an obstacle to it.
   */
  ownInterfaceIndexes?: number[];
  /** Our own NetNat's name, likewise. */
  ownNatName?: string;
}

/**
 * The candidates, in a fixed order: every /24 of 172.31.240.0/20 (the
 * default and its neighbours), then the rest of 172.31.0.0/16, then
 * 172.30.x down to 172.16.x, so the same host gives the same answer.
 */
function* candidates(): Generator<Ipv4Net> {
  const at = (second: number, third: number): Ipv4Net => ({ base: ((172 << 24) | (second << 16) | (third << 8)) >>> 0, prefix: 24 });
  for (let third = 240; third <= 255; third++) yield at(31, third);
  for (let third = 0; third < 240; third++) yield at(31, third);
  for (let second = 30; second >= 16; second--) for (let third = 0; third <= 255; third++) yield at(second, third);
}

/** What on the host overlaps `net`: routes (the default route aside), on-link address ranges and NetNats, ours excepted. */
export function subnetBlockers(taken: TakenNetworks, subnet: string): { routes: HostRoute[]; addresses: HostAddress[]; nats: NetNatInfo[] } {
  const net = parseCidr(subnet);
  if (net === undefined) return { routes: [], addresses: [], nats: [] };
  const own = taken.ownInterfaceIndexes ?? [];
  return {
    routes: taken.routes.filter((r) => {
      if (own.includes(r.interfaceIndex)) return false;
      const dest = parseCidr(r.destinationPrefix);
      // The default route covers everything and blocks nothing; VPN routes are ordinary routes here.
      return dest !== undefined && dest.prefix > 0 && !isIgnoredRoute(dest) && netsOverlap(dest, net);
    }),
    addresses: taken.addresses.filter((a) => {
      if (own.includes(a.interfaceIndex)) return false;
      const onLink = parseCidr(`${a.ipAddress}/${a.prefixLength}`);
      return onLink !== undefined && netsOverlap(onLink, net);
    }),
    nats: taken.nats.filter((n) => {
      if (taken.ownNatName !== undefined && n.name === taken.ownNatName) return false;
      const prefix = parseCidr(n.internalPrefix);
      return prefix !== undefined && netsOverlap(prefix, net);
    }),
  };
}

function isFree(net: Ipv4Net, taken: TakenNetworks): boolean {
  const b = subnetBlockers(taken, formatCidr(net));
  return b.routes.length === 0 && b.addresses.length === 0 && b.nats.length === 0;
}

/**
 * A subnet for our Internal switch and NetNat that no host route (VPN routes
 * included), address or other NetNat overlaps. Without `preferred`, the
 * first free candidate. With it (the user's --hyperv-nat-subnet), that
 * subnet when no route or address overlaps it and no NetNat conflicts with
 * it (a NetNat with the same prefix, or one containing it, already
 * translates it and is reused: natConflict), and undefined otherwise: a
 * subnet the user asked for is never swapped for another. The gateway (the host's vEthernet
 * address) is the first address, the guest the second. Undefined also when
 * every candidate is taken, or `preferred` is not an IPv4 network with room
 * for both.
 */
export function chooseNatSubnet(taken: TakenNetworks, preferred?: string): NatPlan | undefined {
  const planOf = (net: Ipv4Net): NatPlan => ({ subnet: formatCidr(net), gateway: intToIpv4(net.base + 1), guest: intToIpv4(net.base + 2) });
  if (preferred !== undefined) {
    const wanted = parseCidr(preferred);
    if (wanted === undefined || wanted.prefix > 30 || wanted.prefix < 8) return undefined;
    const b = subnetBlockers(taken, formatCidr(wanted));
    return b.routes.length === 0 && b.addresses.length === 0 && natConflict(b.nats, formatCidr(wanted)).kind !== 'conflict' ? planOf(wanted) : undefined;
  }
  for (const net of candidates()) if (isFree(net, taken)) return planOf(net);
  return undefined;
}
export type NatConflict = { kind: 'none' } | { kind: 'reuse'; name: string } | { kind: 'conflict'; name: string; prefix: string };

/**
 * What the NetNats already on the host mean for a NAT over `subnet`. One with
 * exactly our prefix is reused (ours from an earlier start, or one the user
 * made for it); one whose prefix contains ours already translates our subnet
 * (Docker's or WSL's /16 around it), so it is reused too and not recorded as
 * ours. Any other overlap is a conflict: Windows refuses a second NAT over
 * the same addresses (New-NetNat fails with Windows System Error 87).
 */
export function natConflict(nats: readonly NetNatInfo[], subnet: string): NatConflict {
  const ours = parseCidr(subnet);
  if (ours === undefined) return { kind: 'none' };
  const ipv4 = nats.map((n) => ({ nat: n, prefix: parseCidr(n.internalPrefix) })).filter((x): x is { nat: NetNatInfo; prefix: Ipv4Net } => x.prefix !== undefined);
  const identical = ipv4.find((x) => x.prefix.base === ours.base && x.prefix.prefix === ours.prefix);
  if (identical !== undefined) return { kind: 'reuse', name: identical.nat.name };
  const overlapping = ipv4.filter((x) => netsOverlap(x.prefix, ours));
  const conflicting = overlapping.find((x) => x.prefix.prefix > ours.prefix);
  if (conflicting !== undefined) return { kind: 'conflict', name: conflicting.nat.name, prefix: conflicting.nat.internalPrefix };
  const supernet = overlapping[0];
  if (supernet !== undefined) return { kind: 'reuse', name: supernet.nat.name };
  return { kind: 'none' };
}

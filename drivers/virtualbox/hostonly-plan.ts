import { formatCidr, intToIpv4, netContains, netsOverlap, parseCidr } from '../../src/host/ipv4.ts';
import type { Ipv4Net } from '../../src/host/ipv4.ts';
import type { Route } from '../../src/doctor/net.ts';
import { networkOf } from './parse.ts';
import type { DhcpServer, HostOnlyInterface, HostOnlyNet, VBoxVersion } from './parse.ts';
import { versionAtLeast } from './parse.ts';

/**
 * Choosing the host-only subnet: a /24 inside 192.168.56.0/21, the only range
 * VirtualBox 6.1.28+ allows on Linux and macOS unless /etc/vbox/networks.conf
 * lists others, that no existing host-only adapter, host-only network, DHCP
 * server or host route already covers. Pure: the inputs are parsed listings.
 */

export const DEFAULT_ALLOWED = '192.168.56.0/21';

/** Addresses inside a devcluster host-only /24. */
export const HOST_OCTET = 1;
export const DHCP_SERVER_OCTET = 2;
export const GUEST_OCTET = 10;
export const DHCP_LOWER_OCTET = 100;
export const DHCP_UPPER_OCTET = 254;

export interface HostOnlyAddresses {
  subnet: string;
  netmask: string;
  hostIp: string;
  dhcpServerIp: string;
  guestIp: string;
  lowerIp: string;
  upperIp: string;
}

export function addressesOf(net: Ipv4Net): HostOnlyAddresses {
  const at = (octet: number) => intToIpv4(net.base + octet);
  return { subnet: formatCidr(net), netmask: '255.255.255.0', hostIp: at(HOST_OCTET), dhcpServerIp: at(DHCP_SERVER_OCTET), guestIp: at(GUEST_OCTET), lowerIp: at(DHCP_LOWER_OCTET), upperIp: at(DHCP_UPPER_OCTET) };
}

/**
 * The ranges VirtualBox lets a host-only adapter use here, or undefined when
 * it does not restrict them: Windows, VirtualBox before 6.1.28, and macOS
 * with VirtualBox 7 (vmnet networks are not checked).
 */
export function allowedRanges(platform: NodeJS.Platform, version: VBoxVersion, networksConf: readonly Ipv4Net[] | undefined): readonly Ipv4Net[] | undefined {
  if (platform === 'win32') return undefined;
  if (!versionAtLeast(version, 6, 1, 28)) return undefined;
  if (platform === 'darwin' && version.major >= 7) return undefined;
  return networksConf ?? [parseCidr(DEFAULT_ALLOWED) as Ipv4Net];
}

export interface Occupied {
  net: Ipv4Net;
  by: string;
}

/** What already uses which subnet: adapters, vmnet networks, DHCP servers, and host routes more specific than a default route. */
export function occupiedSubnets(input: { ifs: readonly HostOnlyInterface[]; nets: readonly HostOnlyNet[]; dhcp: readonly DhcpServer[]; routes: readonly Route[] }): Occupied[] {
  const out: Occupied[] = [];
  for (const i of input.ifs) {
    const net = networkOf(i.ip, i.netmask);
    if (net !== undefined) out.push({ net, by: `host-only adapter ${i.name}` });
  }
  for (const n of input.nets) {
    const net = networkOf(n.lowerIp, n.netmask);
    if (net !== undefined) out.push({ net, by: `host-only network ${n.name}` });
  }
  for (const d of input.dhcp) {
    const net = networkOf(d.serverIp, d.netmask);
    if (net !== undefined) out.push({ net, by: `DHCP server ${d.networkName}` });
  }
  for (const r of input.routes) {
    if (r.destination.prefix === 0) continue;
    out.push({ net: r.destination, by: `host route ${formatCidr(r.destination)} via ${r.iface || '?'}` });
  }
  return out;
}

/**
 * The first free /24: inside the allowed ranges when VirtualBox restricts
 * them (192.168.56.0/21 by default), else inside 192.168.56.0/21 anyway,
 * where VirtualBox's own defaults live and users expect them.
 */
export function chooseSubnet(allowed: readonly Ipv4Net[] | undefined, occupied: readonly Occupied[]): { net?: Ipv4Net; considered: string[] } {
  const pool = allowed ?? [parseCidr(DEFAULT_ALLOWED) as Ipv4Net];
  const considered: string[] = [];
  for (const range of pool) {
    if (range.prefix > 24) continue;
    const count = 2 ** (24 - range.prefix);
    for (let i = 0; i < count && i < 4096; i += 1) {
      const candidate: Ipv4Net = { base: (range.base + i * 256) >>> 0, prefix: 24 };
      const clash = occupied.find((o) => netsOverlap(o.net, candidate));
      if (clash === undefined) return { net: candidate, considered };
      considered.push(`${formatCidr(candidate)} (${clash.by})`);
    }
  }
  return { considered };
}

export function isAllowed(allowed: readonly Ipv4Net[] | undefined, net: Ipv4Net): boolean {
  return allowed === undefined || allowed.some((a) => netContains(a, net));
}

import { findDhcpdLease, parseDhcpdLeases } from '../../src/host/dhcpd-leases.ts';
import { formatCidr, ipv4ToInt, isIpv4, netContainsAddress, parseCidr } from '../../src/host/ipv4.ts';
import type { Ipv4Net } from '../../src/host/ipv4.ts';
import { findIscLease, parseIscLeases } from '../../src/host/isc-leases.ts';
import { readTextIfExists } from '../../src/host/read-if-exists.ts';
import type { LeaseFile, VmwareHost } from './host.ts';

/**
 * vmnet8, VMware's NAT network: its subnet from VMware's own configuration
 * (to tell the guest's address from an address inside it), and the DHCP
 * lease that vmnet-dhcpd (or, on some Fusion versions, macOS's bootpd)
 * gave the VM's MAC.
 */

export interface Vmnet8 {
  subnet?: Ipv4Net;
  nat: boolean;
  dhcp: boolean;
  /** The file that said so. */
  source: string;
}

function prefixOf(netmask: string): number | undefined {
  if (!isIpv4(netmask)) return undefined;
  const n = ipv4ToInt(netmask);
  const prefix = 32 - Math.log2((~n >>> 0) + 1);
  return Number.isInteger(prefix) ? prefix : undefined;
}

/**
 * `networking` (Linux /etc/vmware/networking, macOS .../VMware Fusion/networking):
 *
 *     answer VNET_8_DHCP yes
 *     answer VNET_8_HOSTONLY_NETMASK 255.255.255.0
 *     answer VNET_8_HOSTONLY_SUBNET 172.16.41.0
 *     answer VNET_8_NAT yes
 *
 * Undefined when the file does not define vmnet8.
 */
export function parseNetworking(text: string, source: string, vnet = 8): Vmnet8 | undefined {
  const answers = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*answer\s+VNET_(\d+)_(\w+)\s+(\S+)\s*$/.exec(line);
    if (m !== null && Number(m[1]) === vnet) answers.set(m[2] as string, m[3] as string);
  }
  if (answers.size === 0) return undefined;
  const subnet = answers.get('HOSTONLY_SUBNET');
  const prefix = prefixOf(answers.get('HOSTONLY_NETMASK') ?? '');
  const net = subnet !== undefined && prefix !== undefined ? parseCidr(`${subnet}/${prefix}`) : undefined;
  return { ...(net === undefined ? {} : { subnet: net }), nat: answers.get('NAT') === 'yes', dhcp: answers.get('DHCP') === 'yes', source };
}

/**
 * Windows' %ProgramData%\VMware\vmnetnat.conf, an INI file whose [host]
 * section names the NAT device and its gateway address. VMware's reference
 * for the file: `ip` "can be followed by a slash and the number of bits in
 * the subnet", and `netmask` is its own parameter, which is what the
 * installer writes:
 *
 *     [host]
 *     ip = 192.168.79.2
 *     netmask = 255.255.255.0
 *     device = VMnet8
 *
 * A bare `ip` is never taken as a /32 (every guest address would then be
 * "outside vmnet8"): without a prefix or a netmask the subnet is unknown.
 */
export function parseVmnetNatConf(text: string, source: string): Vmnet8 | undefined {
  let section = '';
  let ip: string | undefined;
  let netmask: string | undefined;
  let device: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const s = /^\[(.+)\]$/.exec(line);
    if (s !== null) {
      section = (s[1] as string).trim().toLowerCase();
      continue;
    }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv === null || section !== 'host') continue;
    const key = (kv[1] as string).toLowerCase();
    if (key === 'ip') ip = kv[2];
    if (key === 'netmask') netmask = kv[2];
    if (key === 'device') device = kv[2];
  }
  if (ip === undefined && device === undefined) return undefined;
  const prefix = netmask === undefined ? undefined : prefixOf(netmask.trim());
  const cidr = ip === undefined ? undefined : ip.includes('/') ? ip : prefix === undefined ? undefined : `${ip.trim()}/${prefix}`;
  const net = cidr === undefined ? undefined : parseCidr(cidr);
  return { ...(net === undefined ? {} : { subnet: net }), nat: device === undefined || /^vmnet8$/i.test(device), dhcp: true, source };
}

/** vmnet8 as this host's VMware configuration describes it; undefined when the file is missing or says nothing of vmnet8. */
export async function readVmnet8(host: VmwareHost): Promise<Vmnet8 | undefined> {
  const text = await readTextIfExists(host.networkConfig).catch(() => undefined);
  if (text === undefined) return undefined;
  return host.platform === 'win32' ? parseVmnetNatConf(text, host.networkConfig) : parseNetworking(text, host.networkConfig);
}

export function describeVmnet8(n: Vmnet8): string {
  return `${n.subnet === undefined ? 'subnet unknown' : formatCidr(n.subnet)}, NAT ${n.nat ? 'on' : 'off'}${n.dhcp ? ', DHCP on' : ', DHCP off'} (${n.source})`;
}

export function inVmnet8(n: Vmnet8 | undefined, ip: string): boolean {
  return n?.subnet === undefined || netContainsAddress(n.subnet, ipv4ToInt(ip));
}

export interface LeaseHit {
  ip: string;
  file: string;
}

/**
 * The current lease for `mac` in the first lease file that has one. A
 * missing file is no lease; an unreadable one is skipped (a Windows
 * leases file is only readable by Administrators on some installs) and
 * reported through `unreadable` for the hint.
 */
export async function findVmnetLease(files: readonly LeaseFile[], mac: string, now: number, unreadable?: (file: string, why: string) => void): Promise<LeaseHit | undefined> {
  for (const f of files) {
    let text: string | undefined;
    try {
      text = await readTextIfExists(f.path);
    } catch (e) {
      unreadable?.(f.path, (e as NodeJS.ErrnoException).code ?? String(e));
      continue;
    }
    if (text === undefined) continue;
    const ip = f.format === 'isc' ? findIscLease(parseIscLeases(text), mac, now)?.ipAddress : findDhcpdLease(parseDhcpdLeases(text), mac, { now: Math.floor(now / 1000) })?.ipAddress;
    if (ip !== undefined) return { ip, file: f.path };
  }
  return undefined;
}

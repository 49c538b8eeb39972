/**
 * macOS bootpd's lease file (/var/db/dhcpd_leases): how every vmnet-based
 * macOS driver (HyperKit, VMware Fusion, QEMU with socket_vmnet) learns the
 * IPv4 address its guest got, by looking up the MAC the driver gave the VM.
 *
 * The format is a sequence of brace blocks of key=value lines:
 *
 *     {
 *     	name=<guest hostname>
 *     	ip_address=192.168.64.3
 *     	hw_address=1,52:54:0:ab:cd:ef
 *     	identifier=1,52:54:0:ab:cd:ef
 *     	lease=0x66a1b2c3
 *     }
 *
 * The file belongs to bootpd and other VMs share it, so the parser is lenient:
 * anything it does not understand is skipped, never thrown, so one odd entry
 * cannot hide the lease of ours.
 */

import { readTextIfExists } from './read-if-exists.ts';
import { isIpv4 } from './ipv4.ts';

/** Where macOS bootpd writes its leases. */
export const DHCPD_LEASES_PATH = '/var/db/dhcpd_leases';

/** One usable Ethernet lease from the file. */
export interface DhcpdLease {
  /** The hostname the guest sent; bootpd omits it when the guest sent none. */
  readonly name: string | undefined;
  /** Dotted IPv4 address bootpd handed out. */
  readonly ipAddress: string;
  /** The guest's MAC as 6 bytes. */
  readonly mac: Uint8Array;
  /** When the lease expires, in Unix seconds (bootpd writes it as hex). */
  readonly expiresAt: number;
}

/**
 * A colon-separated Ethernet MAC as 6 bytes, or undefined. Each octet may have
 * 1 or 2 hex digits because bootpd prints octets with %x ("8e:1:99:…", Apple
 * FB15382970), while drivers and users write them zero-padded.
 */
export function parseMac(text: string): Uint8Array | undefined {
  const parts = text.trim().split(':');
  if (parts.length !== 6) return undefined;
  const bytes = new Uint8Array(6);
  for (const [i, part] of parts.entries()) {
    if (!/^[0-9a-f]{1,2}$/i.test(part)) return undefined;
    bytes[i] = Number.parseInt(part, 16);
  }
  return bytes;
}

/** Zero-padded lowercase form ("8e:01:99:9c:54:b1"), for messages and logs. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Byte equality: the only comparison that treats "8e:1:…" and "8E:01:…" as the same MAC. */
export function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

interface RawEntry {
  name?: string;
  ipAddress?: string;
  hwAddress?: string;
  lease?: string;
}

/**
 * Every usable lease in the file's text, in file order. Accepts LF and CRLF,
 * blank lines, "#" comment lines (socket_vmnet setups add a header that a
 * strict parser rejects) and unknown keys. Skips entries that are not
 * Ethernet (hw_address type "ff" is a DUID other VMs register), entries
 * without a valid MAC, dotted IPv4 address or hex lease, and entries left
 * open by a truncated file.
 */
export function parseDhcpdLeases(text: string): DhcpdLease[] {
  const leases: DhcpdLease[] = [];
  let current: RawEntry | undefined;
  for (const raw of text.split('\n')) {
    // trim() also drops the "\r" of CRLF line ends.
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line === '{') {
      // A "{" inside an open entry means the previous one never closed: drop it.
      current = {};
      continue;
    }
    if (line === '}') {
      const lease = current === undefined ? undefined : toLease(current);
      if (lease !== undefined) leases.push(lease);
      current = undefined;
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || eq <= 0) continue;
    const value = line.slice(eq + 1).trim();
    switch (line.slice(0, eq).trim()) {
      case 'name':
        current.name = value;
        break;
      case 'ip_address':
        current.ipAddress = value;
        break;
      case 'hw_address':
        current.hwAddress = value;
        break;
      case 'lease':
        current.lease = value;
        break;
      default:
        // identifier and any key a later macOS adds: not needed to find an address.
        break;
    }
  }
  return leases;
}

function toLease(entry: RawEntry): DhcpdLease | undefined {
  const hw = entry.hwAddress ?? '';
  const comma = hw.indexOf(',');
  // "<ARP hardware type>,<address>": only type 1 (Ethernet) holds a MAC.
  if (comma < 0 || hw.slice(0, comma).trim() !== '1') return undefined;
  const mac = parseMac(hw.slice(comma + 1));
  if (mac === undefined) return undefined;
  if (entry.ipAddress === undefined || !isIpv4(entry.ipAddress)) return undefined;
  const expiresAt = parseHexSeconds(entry.lease ?? '');
  if (expiresAt === undefined) return undefined;
  return { name: entry.name === '' ? undefined : entry.name, ipAddress: entry.ipAddress, mac, expiresAt };
}

function parseHexSeconds(text: string): number | undefined {
  if (!/^0x[0-9a-f]{1,12}$/i.test(text)) return undefined;
  return Number.parseInt(text.slice(2), 16);
}

/**
 * The lease for a MAC among parsed leases, or undefined when there is none.
 * When several entries hold the MAC (a VM re-created with the same MAC, an old
 * address not yet expired) the newest lease wins: it is the address the guest
 * holds now, whatever order bootpd wrote the entries in. With `now` (Unix
 * seconds), leases that expired by then are not candidates.
 *
 * Throws a RangeError when `mac` is not a MAC: callers pass their own VM's
 * MAC, so a bad one is a bug that waiting for a lease would only hide.
 */
export function findDhcpdLease(leases: readonly DhcpdLease[], mac: string, options: { now?: number } = {}): DhcpdLease | undefined {
  const wanted = parseMac(mac);
  if (wanted === undefined) throw new RangeError(`not a MAC address: ${JSON.stringify(mac)}`);
  let best: DhcpdLease | undefined;
  for (const lease of leases) {
    // An expired lease's address may since belong to another machine.
    if (options.now !== undefined && lease.expiresAt <= options.now) continue;
    if (sameMac(lease.mac, wanted) && (best === undefined || lease.expiresAt > best.expiresAt)) best = lease;
  }
  return best;
}

/**
 * The current lease for a MAC from bootpd's file, or undefined when there is
 * none yet. bootpd creates the file only when it hands out its first lease,
 * so a missing file means "no lease yet"; any other read error (permissions,
 * a directory at the path) propagates as the fs error.
 */
export async function readDhcpdLease(mac: string, path: string = DHCPD_LEASES_PATH, options: { now?: number } = {}): Promise<DhcpdLease | undefined> {
  // Checked before reading so a bad MAC fails the same way with or without a file.
  if (parseMac(mac) === undefined) throw new RangeError(`not a MAC address: ${JSON.stringify(mac)}`);
  const text = await readTextIfExists(path);
  return text === undefined ? undefined : findDhcpdLease(parseDhcpdLeases(text), mac, options);
}

import { isIpv4, ipv4ToInt, parseCidr } from '../../src/host/ipv4.ts';
import type { Ipv4Net } from '../../src/host/ipv4.ts';
import type { VmState } from '../driver.ts';

/**
 * Parsers for VBoxManage's output, pure functions over text. The formats are
 * documented in the VirtualBox manual (chapter "VBoxManage") and recorded in
 * test/fixtures/virtualbox/README.md with their sources. Every parser accepts
 * CRLF (VBoxManage.exe) as well as LF.
 */

function lines(text: string): string[] {
  return text.replace(/\r\n?/g, '\n').split('\n');
}

export interface VBoxVersion {
  major: number;
  minor: number;
  patch: number;
  /** As printed, without the revision: "7.0.14". */
  text: string;
}

/**
 * `VBoxManage --version`: "7.0.14r161095", "6.1.26_Ubuntur145957",
 * "7.1.12_Ubuntur169389". Lines starting with WARNING: (a kernel module that
 * is not loaded) and the lines that continue such a warning come first; the
 * version is the last line that looks like one.
 */
export function parseVBoxVersion(text: string): VBoxVersion | undefined {
  for (const line of lines(text).reverse()) {
    const m = /^\s*(\d+)\.(\d+)(?:\.(\d+))?(?:[_r][^\s]*)?\s*$/.exec(line);
    if (m === null) continue;
    const major = Number(m[1]);
    const minor = Number(m[2]);
    const patch = Number(m[3] ?? 0);
    return { major, minor, patch, text: `${major}.${minor}.${patch}` };
  }
  return undefined;
}

/** The WARNING: paragraphs VBoxManage prints before its answer (a kernel driver missing, an incomplete install). */
export function versionWarnings(text: string): string[] {
  const out: string[] = [];
  for (const line of lines(text)) {
    if (/^WARNING:/.test(line)) out.push(line.trim());
    else if (out.length > 0 && line.trim() !== '' && parseVBoxVersion(line) === undefined) out[out.length - 1] += ` ${line.trim()}`;
  }
  return out;
}

export function versionAtLeast(v: VBoxVersion, major: number, minor: number, patch = 0): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

/**
 * `showvminfo --machinereadable`: `key=value` lines, where keys with spaces
 * or dashes are quoted ("SATA-0-0"="...") and numbers are not (memory=2048).
 * Inside quotes VBoxManage escapes backslashes and double quotes with a
 * backslash. A value spanning lines (a description) ends at the closing quote.
 */
export function parseMachineReadable(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const all = lines(text);
  for (let i = 0; i < all.length; i += 1) {
    const line = all[i] ?? '';
    const m = /^("(?:[^"\\]|\\.)*"|[^=]+)=(.*)$/.exec(line);
    if (m === null) continue;
    const key = unquote(m[1] ?? '');
    let value = m[2] ?? '';
    if (value.startsWith('"')) {
      while (!closesQuote(value) && i + 1 < all.length) {
        i += 1;
        value += `\n${all[i] ?? ''}`;
      }
      value = unquote(value);
    }
    out.set(key, value);
  }
  return out;
}

function closesQuote(value: string): boolean {
  if (value.length < 2 || !value.endsWith('"')) return false;
  let backslashes = 0;
  for (let i = value.length - 2; i >= 0 && value[i] === '\\'; i -= 1) backslashes += 1;
  return backslashes % 2 === 0;
}

function unquote(text: string): string {
  if (!(text.startsWith('"') && text.endsWith('"') && text.length >= 2)) return text;
  return text.slice(1, -1).replace(/\\(.)/g, '$1');
}

/**
 * VMState words (VBoxManageInfo.cpp, machineStateToName with short names)
 * mapped onto the driver contract's states. `aborted` is a VM whose process
 * died: it is stopped (its disk is consistent as far as VirtualBox knows);
 * `aborted-saved` (7.x) still has a saved state to resume.
 */
export function mapVmState(word: string | undefined): VmState {
  switch (word) {
    case 'running':
    case 'teleporting':
    case 'livesnapshotting':
    case 'onlinesnapshotting':
    case 'deletingsnapshotlive':
      return 'running';
    case 'paused':
    case 'deletingsnapshotlivepaused':
    case 'teleportingpausedvm':
      return 'paused';
    case 'saved':
    case 'aborted-saved':
      return 'saved';
    case 'poweroff':
    case 'aborted':
    case 'teleported':
      return 'stopped';
    case 'starting':
    case 'restoring':
    case 'teleportingin':
      return 'starting';
    case 'stopping':
    case 'saving':
      return 'stopping';
    case undefined:
    case '':
      return 'broken';
    default:
      // gurumeditation, settingup, snapshotting, ...: VirtualBox holds the VM in a state devcluster does not drive.
      return 'broken';
  }
}

/**
 * Records of `Key: value` lines (list hostonlyifs, list hostonlynets, list
 * dhcpservers). A record begins at `startKey`; blank lines are not relied on
 * (some versions print none, hostonlynets prints one inside a record). The
 * value is everything after the first colon, trimmed; indented lines (the
 * DHCP options of 6.1+) belong to no key and are skipped.
 */
export function parseColonRecords(text: string, startKey: string): Array<Record<string, string>> {
  const records: Array<Record<string, string>> = [];
  let current: Record<string, string> | undefined;
  for (const line of lines(text)) {
    if (line.trim() === '' || /^\s/.test(line)) continue;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === startKey) {
      current = {};
      records.push(current);
    }
    if (current !== undefined && !(key in current)) current[key] = value;
  }
  return records;
}

export interface HostOnlyInterface {
  name: string;
  guid?: string;
  dhcp: boolean;
  ip?: string;
  netmask?: string;
  status?: string;
  networkName?: string;
}

/** `list hostonlyifs` (legacy host-only adapters: vboxnet0 on Linux/macOS, "VirtualBox Host-Only Ethernet Adapter #2" on Windows). */
export function parseHostOnlyIfs(text: string): HostOnlyInterface[] {
  return parseColonRecords(text, 'Name').map((r) => ({
    name: r['Name'] ?? '',
    ...(r['GUID'] ? { guid: r['GUID'] } : {}),
    dhcp: (r['DHCP'] ?? 'Disabled') !== 'Disabled',
    ...(r['IPAddress'] ? { ip: r['IPAddress'] } : {}),
    ...(r['NetworkMask'] ? { netmask: r['NetworkMask'] } : {}),
    ...(r['Status'] ? { status: r['Status'] } : {}),
    ...(r['VBoxNetworkName'] ? { networkName: r['VBoxNetworkName'] } : {}),
  }));
}

export interface HostOnlyNet {
  name: string;
  guid?: string;
  enabled: boolean;
  netmask?: string;
  lowerIp?: string;
  upperIp?: string;
  networkName?: string;
}

/** `list hostonlynets` (VirtualBox 7: vmnet-backed host-only networks on macOS, also listed on other hosts). */
export function parseHostOnlyNets(text: string): HostOnlyNet[] {
  return parseColonRecords(text, 'Name').map((r) => ({
    name: r['Name'] ?? '',
    ...(r['GUID'] ? { guid: r['GUID'] } : {}),
    enabled: (r['State'] ?? '') === 'Enabled',
    ...(r['NetworkMask'] ? { netmask: r['NetworkMask'] } : {}),
    ...(r['LowerIP'] ? { lowerIp: r['LowerIP'] } : {}),
    ...(r['UpperIP'] ? { upperIp: r['UpperIP'] } : {}),
    ...(r['VBoxNetworkName'] ? { networkName: r['VBoxNetworkName'] } : {}),
  }));
}

export interface DhcpServer {
  networkName: string;
  serverIp?: string;
  netmask?: string;
  lowerIp?: string;
  upperIp?: string;
  enabled: boolean;
}

/**
 * `list dhcpservers` in both formats: before 6.1 (`IP:`, `lowerIPAddress:`,
 * `upperIPAddress:`) and from 6.1 (`Dhcpd IP:`, `LowerIPAddress:`,
 * `UpperIPAddress:`, followed by indented option lines).
 */
export function parseDhcpServers(text: string): DhcpServer[] {
  return parseColonRecords(text, 'NetworkName').map((r) => {
    const serverIp = r['Dhcpd IP'] ?? r['IP'];
    const lowerIp = r['LowerIPAddress'] ?? r['lowerIPAddress'];
    const upperIp = r['UpperIPAddress'] ?? r['upperIPAddress'];
    return {
      networkName: r['NetworkName'] ?? '',
      ...(serverIp ? { serverIp } : {}),
      ...(r['NetworkMask'] ? { netmask: r['NetworkMask'] } : {}),
      ...(lowerIp ? { lowerIp } : {}),
      ...(upperIp ? { upperIp } : {}),
      enabled: (r['Enabled'] ?? 'No') === 'Yes',
    };
  });
}

/** A dotted netmask as a prefix length; undefined for a non-contiguous mask (VirtualBox on Windows has printed "15.0.0.0"). */
export function prefixOfMask(mask: string): number | undefined {
  if (!isIpv4(mask)) return undefined;
  const hostBits = ~ipv4ToInt(mask) >>> 0;
  // Contiguous ones then zeros: the host part is 2^k - 1.
  if ((hostBits & ((hostBits + 1) >>> 0)) >>> 0 !== 0) return undefined;
  return 32 - (hostBits === 0 ? 0 : Math.log2(hostBits + 1));
}

/** The IPv4 network of an address and a dotted mask. */
export function networkOf(ip: string | undefined, mask: string | undefined): Ipv4Net | undefined {
  if (ip === undefined || mask === undefined) return undefined;
  const prefix = prefixOfMask(mask);
  return prefix === undefined ? undefined : parseCidr(`${ip}/${prefix}`);
}

/** The IPv4 networks /etc/vbox/networks.conf allows: lines starting with `*` list CIDRs; IPv6 ranges are ignored here. */
export function parseNetworksConf(text: string): Ipv4Net[] {
  const out: Ipv4Net[] = [];
  for (const line of lines(text)) {
    const t = line.trim();
    if (!t.startsWith('*')) continue;
    for (const word of t.slice(1).trim().split(/\s+/)) {
      const net = /^[\d.]+\/\d+$/.test(word) ? parseCidr(word) : undefined;
      if (net !== undefined) out.push(net);
    }
  }
  return out;
}

/** `hostonlyif create`: "Interface 'vboxnet1' was successfully created". */
export function parseCreatedInterface(text: string): string | undefined {
  return /^Interface '(.+)' was successfully created\s*$/m.exec(text.replace(/\r\n?/g, '\n'))?.[1];
}

/** `showmediuminfo disk <file>` / `list hdds`: records of `UUID:`, `Parent UUID:`, `Location:`, `In use by VMs:`, `Child UUIDs:`. */
export interface MediumInfo {
  uuid: string;
  parentUuid?: string;
  location?: string;
  type?: string;
  inUseBy: string[];
  children: string[];
}

/**
 * `list hdds`. Continuation lines of "Child UUIDs:" are indented UUIDs, which
 * parseColonRecords drops, so this reads them itself.
 */
export function parseHdds(text: string): MediumInfo[] {
  const out: MediumInfo[] = [];
  let current: MediumInfo | undefined;
  let inChildren = false;
  for (const line of lines(text)) {
    if (line.trim() === '') {
      inChildren = false;
      continue;
    }
    if (/^\s/.test(line)) {
      if (inChildren && current !== undefined && /^[0-9a-f-]{36}$/i.test(line.trim())) current.children.push(line.trim());
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    inChildren = false;
    if (key === 'UUID') {
      current = { uuid: value, inUseBy: [], children: [] };
      out.push(current);
      continue;
    }
    if (current === undefined) continue;
    if (key === 'Parent UUID' && value !== 'base') current.parentUuid = value;
    else if (key === 'Location') current.location = value;
    else if (key === 'Type') current.type = value;
    else if (key === 'In use by VMs') current.inUseBy = value === '' ? [] : value.split(/\)\s*,?\s*/).filter((s) => s.trim() !== '').map((s) => `${s.trim()})`);
    else if (key === 'Child UUIDs') {
      if (value !== '') current.children.push(value);
      inChildren = true;
    }
  }
  return out;
}

/** `list vms`: `"name" {uuid}` lines. */
export function parseVmList(text: string): Array<{ name: string; uuid: string }> {
  const out: Array<{ name: string; uuid: string }> = [];
  for (const line of lines(text)) {
    const m = /^"(.*)" \{([0-9a-fA-F-]+)\}\s*$/.exec(line);
    if (m !== null) out.push({ name: m[1] ?? '', uuid: m[2] ?? '' });
  }
  return out;
}

/** `showmediuminfo disk <file>`: "Capacity:       20480 MBytes". */
export function parseCapacityMiB(text: string): number | undefined {
  const m = /^Capacity:\s+(\d+)\s*MBytes/m.exec(text.replace(/\r\n?/g, '\n'));
  return m === null ? undefined : Number(m[1]);
}

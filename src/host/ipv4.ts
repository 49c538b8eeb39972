/**
 * IPv4 addresses and networks as unsigned 32-bit integers: the one
 * implementation the settings, the doctor's route checks, the image proxy
 * rules, the seed and the drivers' address planners share.
 */

export interface Ipv4Net {
  /** Network address (host bits clear). */
  base: number;
  prefix: number;
}

export function isIpv4(text: string): boolean {
  return /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(text);
}

export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "a.b.c.d/n" or a bare address (a /32); host bits are cleared. */
export function parseCidr(text: string): Ipv4Net | undefined {
  const m = /^([\d.]+)(?:\/(\d{1,2}))?$/.exec(text.trim());
  if (m === null || !isIpv4(m[1] ?? '')) return undefined;
  const prefix = m[2] === undefined ? 32 : Number(m[2]);
  if (prefix > 32) return undefined;
  return { base: (ipv4ToInt(m[1] ?? '') & maskOf(prefix)) >>> 0, prefix };
}

export function formatCidr(n: Ipv4Net): string {
  return `${intToIpv4(n.base)}/${n.prefix}`;
}

/** Whether the address (as an integer) is inside the network. */
export function netContainsAddress(n: Ipv4Net, ip: number): boolean {
  return ((ip & maskOf(n.prefix)) >>> 0) === n.base;
}

/** True when `outer` contains all of `inner`. */
export function netContains(outer: Ipv4Net, inner: Ipv4Net): boolean {
  return outer.prefix <= inner.prefix && netContainsAddress(outer, inner.base);
}

export function netsOverlap(a: Ipv4Net, b: Ipv4Net): boolean {
  return netContains(a, b) || netContains(b, a);
}

export function broadcastOf(n: Ipv4Net): number {
  return (n.base | (~maskOf(n.prefix) >>> 0)) >>> 0;
}

export function netmaskOf(n: Ipv4Net): string {
  return intToIpv4(maskOf(n.prefix));
}

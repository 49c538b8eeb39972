import { isIpv4, netContains, netsOverlap, parseCidr } from '../host/ipv4.ts';
import type { Ipv4Net } from '../host/ipv4.ts';

/**
 * Host routing tables and NO_PROXY coverage: the pure parts of the network
 * checks, kept apart so every format is tested from fixtures. Network
 * arithmetic is src/host/ipv4.ts.
 */

/** The Kubernetes service and pod ranges devcluster's clusters use. */
export const CLUSTER_RANGES = ['10.96.0.0/12', '10.244.0.0/16'] as const;

export interface Route {
  destination: Ipv4Net;
  /** Interface name or alias (eth0, utun3, vEthernet (devcluster)). */
  iface: string;
  gateway?: string;
}

/** `ip -j route` (iproute2 JSON). */
export function parseLinuxRoutes(json: string): Route[] {
  const rows = JSON.parse(json) as Array<{ dst?: string; dev?: string; gateway?: string; type?: string }>;
  const out: Route[] = [];
  for (const r of rows) {
    if (r.type !== undefined && r.type !== 'unicast') continue;
    const dst = r.dst === 'default' ? '0.0.0.0/0' : r.dst;
    const destination = dst === undefined ? undefined : parseCidr(dst);
    if (destination === undefined) continue;
    out.push({ destination, iface: r.dev ?? '', ...(r.gateway === undefined ? {} : { gateway: r.gateway }) });
  }
  return out;
}

/**
 * `Get-NetRoute -AddressFamily IPv4 | Select-Object DestinationPrefix,
 * NextHop, InterfaceAlias | ConvertTo-Json`: an object for one route, an
 * array for several.
 */
export function parseWindowsRoutes(json: string): Route[] {
  const text = json.trim();
  if (text === '') return [];
  const parsed = JSON.parse(text) as unknown;
  const rows = (Array.isArray(parsed) ? parsed : [parsed]) as Array<{ DestinationPrefix?: string; InterfaceAlias?: string; NextHop?: string }>;
  const out: Route[] = [];
  for (const r of rows) {
    const destination = r.DestinationPrefix === undefined ? undefined : parseCidr(r.DestinationPrefix);
    if (destination === undefined) continue;
    const gateway = r.NextHop !== undefined && r.NextHop !== '0.0.0.0' ? r.NextHop : undefined;
    out.push({ destination, iface: r.InterfaceAlias ?? '', ...(gateway === undefined ? {} : { gateway }) });
  }
  return out;
}

/**
 * `netstat -rn -f inet` on macOS. Destinations are abbreviated: "default",
 * "10.8/16", "192.168.1" (a /24: missing octets are zero and the prefix is
 * implied by the octets given), "127" (a /8), or a full host address.
 */
export function parseMacRoutes(text: string): Route[] {
  const out: Route[] = [];
  let inTable = false;
  for (const line of text.split(/\r?\n/)) {
    // Only the IPv4 table: it ends where the Internet6 one starts.
    if (/^Internet6/.test(line)) break;
    const cols = line.trim().split(/\s+/);
    if (cols[0] === 'Destination') {
      inTable = true;
      continue;
    }
    if (!inTable || cols.length < 4 || line.trim() === '') continue;
    const destination = parseMacDestination(cols[0] ?? '');
    if (destination === undefined) continue;
    const gateway = cols[1] ?? '';
    // Netif is the fourth column (Destination Gateway Flags Netif [Expire]).
    out.push({ destination, iface: cols[3] ?? '', ...(isIpv4(gateway) ? { gateway } : {}) });
  }
  return out;
}

function parseMacDestination(text: string): Ipv4Net | undefined {
  if (text === 'default') return { base: 0, prefix: 0 };
  const [addr, prefixText] = text.split('/');
  if (addr === undefined || !/^\d+(\.\d+){0,3}$/.test(addr)) return undefined;
  const octets = addr.split('.');
  const prefix = prefixText === undefined ? octets.length * 8 : Number(prefixText);
  while (octets.length < 4) octets.push('0');
  return parseCidr(`${octets.join('.')}/${prefix}`);
}

export interface RouteConflict {
  route: Route;
  subnet: Ipv4Net;
}

/**
 * Routes that send part of the VM's subnet somewhere else: a VPN, a LAN, a
 * container network. Default routes and routes through devcluster's own
 * interface (or the loopback) are not conflicts.
 */
export function findRouteConflicts(routes: readonly Route[], subnet: Ipv4Net, ownInterfaces: readonly string[]): RouteConflict[] {
  const own = ownInterfaces.map((i) => i.toLowerCase());
  return routes
    .filter((r) => r.destination.prefix > 0)
    .filter((r) => !own.includes(r.iface.toLowerCase()))
    // The host's own addresses show up as routes through the loopback interface.
    .filter((r) => !/^lo\d*$|^loopback/i.test(r.iface))
    .filter((r) => netsOverlap(r.destination, subnet))
    .map((route) => ({ route, subnet }));
}

export const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'] as const;

/** Proxy variables that are set, with passwords masked for display. */
export function proxyVariables(env: NodeJS.ProcessEnv): Array<{ name: string; value: string }> {
  return PROXY_VARIABLES.filter((n) => (env[n] ?? '') !== '').map((name) => ({ name, value: maskProxyPassword(env[name] ?? '') }));
}

/** http://user:secret@proxy:3128 -> http://user:********@proxy:3128 (also without a scheme). */
export function maskProxyPassword(value: string): string {
  return value.replace(/^((?:[a-z][a-z0-9+.-]*:\/\/)?[^\s:/@]+):([^\s@/]+)@/i, '$1:********@');
}

/** NO_PROXY as the union of both spellings, in order, without duplicates. */
export function noProxyEntries(env: NodeJS.ProcessEnv): string[] {
  const all = [env['NO_PROXY'] ?? '', env['no_proxy'] ?? ''].flatMap((v) => v.split(','));
  return [...new Set(all.map((s) => s.trim()).filter((s) => s !== ''))];
}

/** Whether a NO_PROXY list keeps `target` (an IP or a CIDR) away from the proxy. */
export function noProxyCovers(entries: readonly string[], target: string): boolean {
  if (entries.includes('*')) return true;
  const want = parseCidr(target);
  for (const e of entries) {
    if (e === target) return true;
    const have = parseCidr(e);
    if (want !== undefined && have !== undefined && netContains(have, want)) return true;
  }
  return false;
}

/** The entries `required` that NO_PROXY does not cover yet. */
export function missingNoProxy(env: NodeJS.ProcessEnv, required: readonly string[]): string[] {
  const entries = noProxyEntries(env);
  return required.filter((r) => !noProxyCovers(entries, r));
}

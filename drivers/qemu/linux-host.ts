import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../../src/host/exec.ts';
import { processAlive, procStat, provedOurs } from '../../src/host/process.ts';
import { findOnPath } from '../../src/host/path-search.ts';
import { NFT_FAMILY, NFT_TABLE, nftHasTable } from './bridged-plan.ts';

/**
 * The Linux host operations behind bridged networking, one external command
 * each (iproute2, nftables, procps sysctl, dnsmasq), always as argument arrays.
 */

const QUICK_MS = 15_000;

export interface LinkInfo {
  ifname: string;
  ifalias?: string;
  master?: string;
  up: boolean;
  /** linkinfo.info_kind: bridge, tun, veth, dummy... (absent for physical NICs). */
  kind?: string;
}

interface LinkJson {
  ifname: string;
  ifalias?: string;
  master?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
}

export async function listLinks(signal: AbortSignal): Promise<Map<string, LinkInfo>> {
  const r = await run('ip', ['-j', '-d', 'link', 'show'], { parse: true, timeoutMs: QUICK_MS, signal });
  const out = new Map<string, LinkInfo>();
  for (const l of JSON.parse(r.stdout.trim() || '[]') as LinkJson[]) {
    out.set(l.ifname, {
      ifname: l.ifname,
      up: (l.flags ?? []).includes('UP'),
      ...(l.ifalias === undefined || l.ifalias === '' ? {} : { ifalias: l.ifalias }),
      ...(l.master === undefined ? {} : { master: l.master }),
      ...(l.linkinfo?.info_kind === undefined ? {} : { kind: l.linkinfo.info_kind }),
    });
  }
  return out;
}

/** Raw `ip -j` JSON of every IPv4 route (all tables) and address, for bridged-plan's hostNetworks. */
export async function routesAndAddresses(signal: AbortSignal): Promise<{ routes: unknown; addrs: unknown }> {
  const routes = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], { parse: true, timeoutMs: QUICK_MS, signal });
  const addrs = await run('ip', ['-j', '-4', 'addr', 'show'], { parse: true, timeoutMs: QUICK_MS, signal });
  return { routes: JSON.parse(routes.stdout.trim() || '[]'), addrs: JSON.parse(addrs.stdout.trim() || '[]') };
}

export async function linkAddresses(dev: string, signal: AbortSignal): Promise<string[]> {
  const r = await run('ip', ['-j', '-4', 'addr', 'show', 'dev', dev], { parse: true, timeoutMs: QUICK_MS, signal });
  const list = JSON.parse(r.stdout.trim() || '[]') as Array<{ addr_info?: Array<{ local?: string; prefixlen?: number }> }>;
  return list.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
}

/** The alias is set separately: `ip link add` ignores one given there. */
export async function createBridge(name: string, mac: string, signal: AbortSignal): Promise<void> {
  await run('ip', ['link', 'add', 'name', name, 'address', mac, 'type', 'bridge'], { timeoutMs: QUICK_MS, signal });
}

export async function setAlias(name: string, alias: string, signal: AbortSignal): Promise<void> {
  await run('ip', ['link', 'set', 'dev', name, 'alias', alias], { timeoutMs: QUICK_MS, signal });
}

export async function addAddress(dev: string, cidr: string, signal: AbortSignal): Promise<void> {
  await run('ip', ['addr', 'add', cidr, 'dev', dev], { timeoutMs: QUICK_MS, signal });
}

export async function setUp(dev: string, signal: AbortSignal): Promise<void> {
  await run('ip', ['link', 'set', 'dev', dev, 'up'], { timeoutMs: QUICK_MS, signal });
}

export async function createTap(name: string, signal: AbortSignal): Promise<void> {
  await run('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap'], { timeoutMs: QUICK_MS, signal });
}

export async function enslaveUp(dev: string, bridge: string, signal: AbortSignal): Promise<void> {
  await run('ip', ['link', 'set', 'dev', dev, 'master', bridge, 'up'], { timeoutMs: QUICK_MS, signal });
}

export async function deleteLink(dev: string, signal: AbortSignal): Promise<void> {
  await run('ip', ['link', 'del', 'dev', dev], { timeoutMs: QUICK_MS, signal });
}

export async function nftRuleset(signal: AbortSignal): Promise<unknown> {
  const r = await run('nft', ['-j', 'list', 'ruleset'], { parse: true, timeoutMs: QUICK_MS, signal });
  return JSON.parse(r.stdout.trim() || '{}');
}

/** Our table as `nft -j` JSON, or undefined when it does not exist. */
export async function nftOurTable(signal: AbortSignal): Promise<unknown> {
  const tables = await run('nft', ['-j', 'list', 'tables', NFT_FAMILY], { parse: true, timeoutMs: QUICK_MS, signal });
  if (!nftHasTable(JSON.parse(tables.stdout.trim() || '{}'))) return undefined;
  const r = await run('nft', ['-j', 'list', 'table', NFT_FAMILY, NFT_TABLE], { parse: true, timeoutMs: QUICK_MS, signal });
  return JSON.parse(r.stdout.trim() || '{}');
}

export async function nftApply(ruleset: string, signal: AbortSignal): Promise<void> {
  await run('nft', ['-f', '-'], { input: ruleset, timeoutMs: QUICK_MS, signal });
}

export async function nftDeleteTable(signal: AbortSignal): Promise<void> {
  await run('nft', ['delete', 'table', NFT_FAMILY, NFT_TABLE], { timeoutMs: QUICK_MS, signal });
}

export async function readSysctl(key: string, signal: AbortSignal): Promise<string> {
  const r = await run('sysctl', ['-n', key], { parse: true, timeoutMs: QUICK_MS, signal });
  return r.stdout.trim();
}

export async function writeSysctl(key: string, value: string, signal: AbortSignal): Promise<void> {
  await run('sysctl', ['-w', `${key}=${value}`], { timeoutMs: QUICK_MS, signal });
}

/**
 * The pid in our dnsmasq pid file, only if that process is a dnsmasq started
 * with this very pid file (a stale file's pid may belong to anything now).
 */
export async function ourDnsmasq(pidFile: string): Promise<{ pid: number; args: string[] } | undefined> {
  const proof = await provedOurs({ pidFile, program: /^dnsmasq$/, mustInclude: [`--pid-file=${pidFile}`] });
  return proof.ours ? { pid: proof.pid, args: proof.argv.slice(1) } : undefined;
}

/** dnsmasq forks into the background; its parent exits non-zero when startup fails (socket, interface). */
export async function startDnsmasq(args: readonly string[], signal: AbortSignal): Promise<void> {
  await run('dnsmasq', args, { timeoutMs: 30_000, signal });
}

/** A killed daemon stays a zombie until init reaps it; it holds no sockets any more. */
function running(pid: number): boolean {
  return processAlive(pid) && procStat(pid)?.state !== 'Z';
}

/** SIGTERM, then SIGKILL: the next dnsmasq must be able to bind the same sockets. */
export async function stopProcess(pid: number): Promise<void> {
  const gone = async (ms: number) => {
    for (let waited = 0; waited < ms; waited += 50) {
      if (!running(pid)) return true;
      await sleep(50);
    }
    return !running(pid);
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await gone(5000)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await gone(5000);
}

export const LINUX_TOOLS: ReadonlyArray<{ command: string; packages: string }> = [
  { command: 'ip', packages: 'iproute2 (Fedora: iproute)' },
  { command: 'nft', packages: 'nftables' },
  { command: 'sysctl', packages: 'procps' },
  { command: 'dnsmasq', packages: 'dnsmasq-base (Fedora/Arch: dnsmasq)' },
];

/** Tools missing from PATH, checked before anything is created so a missing dnsmasq leaves no half-made bridge. */
export async function missingTools(path = process.env['PATH'] ?? ''): Promise<Array<{ command: string; packages: string }>> {
  const missing: Array<{ command: string; packages: string }> = [];
  for (const tool of LINUX_TOOLS) {
    if ((await findOnPath(tool.command, { env: { PATH: path }, platform: 'linux' })) === undefined) missing.push(tool);
  }
  return missing;
}

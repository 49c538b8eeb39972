/**
 * QEMU bridged networking against the real tools (iproute2, nftables,
 * sysctl, dnsmasq), entirely inside network namespaces this test creates:
 * every bridgedNetwork call runs in a worker under `ip netns exec`, and all
 * traffic stays between namespaces. Nothing touches the machine's own
 * interfaces, firewall or sysctls. Needs root (CI runs as root).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import type { Job } from '../helpers/bridged-network-worker.ts';

const ROOT = process.platform === 'linux' && process.getuid?.() === 0;
const SKIP = skipUnlessPresent(ROOT ? false : 'needs root on Linux: creates network namespaces');
const WORKER = join(REPO, 'test', 'helpers', 'bridged-network-worker.ts');
const DHCP_PROBE = join(REPO, 'test', 'helpers', 'dhcp-probe.ts');
const RUN = randomBytes(3).toString('hex');
const BRIDGE = 'devcluster0';
const MAC_A = '52:54:00:d0:00:0a';
const MAC_B = '52:54:00:d0:00:0b';

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Out> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { env: options.env ?? process.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (options.input !== undefined) {
      child.stdin?.on('error', () => undefined); // a tool that exits early must not turn into EPIPE
      child.stdin?.end(options.input);
    }
  });
}

async function must(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<string> {
  const r = await exec(cmd, args, options);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const inNs = (ns: string, cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}) =>
  must('ip', ['netns', 'exec', ns, cmd, ...args], options);

/** Namespaces and homes made by one describe block, removed in its after hook with the processes left inside. */
class Lab {
  private readonly namespaces: string[] = [];
  private readonly homes: string[] = [];
  private readonly children: ChildProcess[] = [];

  async ns(tag: string): Promise<string> {
    const name = `dctest-${RUN}-${tag}`;
    await must('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await inNs(name, 'ip', ['link', 'set', 'lo', 'up']);
    // A new namespace may inherit ip_forward; start from "off" so the restore is observable.
    await inNs(name, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
    return name;
  }

  async home(): Promise<string> {
    const h = await mkdtemp(join(tmpdir(), 'dc-bridged-'));
    this.homes.push(h);
    return h;
  }

  background(child: ChildProcess): ChildProcess {
    this.children.push(child);
    return child;
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const ns of this.namespaces) {
      // Only processes inside our own namespace (a dnsmasq a failed test left behind).
      const pids = (await exec('ip', ['netns', 'pids', ns])).stdout.split(/\s+/).filter((p) => /^\d+$/.test(p));
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exec('ip', ['netns', 'del', ns]);
    }
    for (const h of this.homes) await rm(h, { recursive: true, force: true });
  }
}

interface WorkerResult {
  ok: boolean;
  result: { plan: Record<string, unknown>; tap: string } | null;
  error?: { id: string; message: string; advice?: string };
  reports: Array<{ level: string; message: string }>;
  resources: Array<{ kind: string; id: string; details?: Record<string, unknown>; shared?: boolean }>;
}


async function worker(ns: string, job: Job, env: NodeJS.ProcessEnv = process.env, prefix: readonly string[] = []): Promise<WorkerResult> {
  const r = await exec('ip', ['netns', 'exec', ns, ...prefix, process.execPath, WORKER, JSON.stringify(job)], { env });
  assert.equal(r.code, 0, `worker ${job.op} ${job.profile}: ${r.stderr}`);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as WorkerResult;
}

function expectOk(r: WorkerResult): NonNullable<WorkerResult['result']> | null {
  assert.equal(r.ok, true, JSON.stringify(r.error));
  return r.result;
}

interface LinkJson {
  ifname: string;
  ifalias?: string;
  master?: string;
  flags: string[];
  address?: string;
  linkinfo?: { info_kind?: string };
}

async function links(ns: string): Promise<LinkJson[]> {
  return JSON.parse(await inNs(ns, 'ip', ['-j', '-d', 'link', 'show'])) as LinkJson[];
}

async function link(ns: string, name: string): Promise<LinkJson | undefined> {
  return (await links(ns)).find((l) => l.ifname === name);
}

async function addresses(ns: string, dev: string): Promise<string[]> {
  const list = JSON.parse(await inNs(ns, 'ip', ['-j', '-4', 'addr', 'show', 'dev', dev])) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
  return list.flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
}

type NftItem = Record<string, Record<string, unknown>>;

/** `table ip devcluster` as nft -j items, or undefined when absent. */
async function ourTable(ns: string): Promise<NftItem[] | undefined> {
  const tables = JSON.parse(await inNs(ns, 'nft', ['-j', 'list', 'tables'])) as { nftables: NftItem[] };
  if (!tables.nftables.some((i) => i['table']?.['family'] === 'ip' && i['table']?.['name'] === 'devcluster')) return undefined;
  return (JSON.parse(await inNs(ns, 'nft', ['-j', 'list', 'table', 'ip', 'devcluster'])) as { nftables: NftItem[] }).nftables;
}

function masqueradedSubnets(table: NftItem[]): string[] {
  const out: string[] = [];
  for (const item of table) {
    const expr = (item['rule']?.['expr'] ?? []) as Array<Record<string, { right?: { prefix?: { addr: string; len: number } }; left?: { payload?: { field: string } } }>>;
    if (!expr.some((e) => 'masquerade' in e)) continue;
    for (const e of expr) {
      const m = e['match'];
      if (m?.left?.payload?.field === 'saddr' && m.right?.prefix !== undefined) out.push(`${m.right.prefix.addr}/${m.right.prefix.len}`);
    }
  }
  return out;
}

async function ipForward(ns: string): Promise<string> {
  return (await inNs(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim();
}

/** Our dnsmasq for a bridge: its pid and argv, read from the pid file and /proc; undefined when not running. */
async function dnsmasqOf(home: string, bridge = BRIDGE): Promise<{ pid: number; argv: string[] } | undefined> {
  const pid = Number((await readFile(join(home, 'network', bridge, 'dnsmasq.pid'), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (!running(pid)) return undefined;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    return argv[0]?.endsWith('dnsmasq') === true ? { pid, argv } : undefined;
  } catch {
    return undefined;
  }
}

async function registry(home: string): Promise<{ bridges: Record<string, { subnet: string; users: Record<string, { ip: string; mac: string; tap: string }> }> } | undefined> {
  const text = await readFile(join(home, 'network', 'bridges.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : JSON.parse(text);
}

/**
 * The stable facts of a namespace's network, for before/after comparisons: no
 * bridge timers, and no packet counters (the bridge sends IGMP reports from its
 * own address at a random moment after it comes up, which the masquerade
 * rule counts). Rule handles stay in: a re-applied table gets new ones.
 */
async function snapshot(ns: string): Promise<string> {
  const l = (await links(ns)).map((x) => ({ n: x.ifname, a: x.ifalias, m: x.master, f: x.flags, mac: x.address, k: x.linkinfo?.info_kind }));
  const addrs = await inNs(ns, 'ip', ['-j', '-4', 'addr', 'show']);
  const routes = await inNs(ns, 'ip', ['-j', '-4', 'route', 'show', 'table', 'all']);
  const nft = (await inNs(ns, 'nft', ['-j', 'list', 'ruleset'])).replace(/"counter": \{[^}]*\}/g, '"counter": {}');
  return JSON.stringify({ l, addrs: JSON.parse(addrs), routes: JSON.parse(routes), nft: JSON.parse(nft), fwd: await ipForward(ns) });
}

/** True while the process exists and is not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

describe('bridged network: two profiles on one bridge, real DHCP, DNS and NAT between namespaces', { skip: SKIP }, () => {
  const lab = new Lab();
  let host = '';
  let home = '';
  let tapA = '';
  let tapB = '';

  before(async () => {
    host = await lab.ns('h');
    home = await lab.home();
  });
  after(() => lab.cleanup());

  test('the first profile gets a bridge with the gateway, its tap in it, masquerading, ip_forward and a DHCP reservation', async () => {
    const r = await worker(host, { home, profile: 'a', op: 'ensure', mac: MAC_A });
    const result = expectOk(r);
    assert.ok(result);
    tapA = result.tap;
    assert.match(tapA, /^dc-[0-9a-f]{12}$/);
    assert.deepEqual(result.plan, {
      mode: 'bridged',
      mac: MAC_A,
      guestAddress: { kind: 'static', cidr: '192.168.211.10/24', gateway: '192.168.211.1' },
      dns: ['192.168.211.1'],
      subnet: '192.168.211.0/24',
      gateway: '192.168.211.1',
    });

    const br = await link(host, BRIDGE);
    assert.equal(br?.linkinfo?.info_kind, 'bridge');
    assert.ok(br?.flags.includes('UP'));
    assert.match(br?.ifalias ?? '', /^devcluster bridge /);
    assert.deepEqual(await addresses(host, BRIDGE), ['192.168.211.1/24']);

    const tap = await link(host, tapA);
    assert.equal(tap?.linkinfo?.info_kind, 'tun');
    assert.equal(tap?.master, BRIDGE);
    assert.ok(tap?.flags.includes('UP'));

    const table = await ourTable(host);
    assert.ok(table, 'table ip devcluster exists');
    assert.deepEqual(masqueradedSubnets(table), ['192.168.211.0/24']);
    assert.equal(await ipForward(host), '1');

    const d = await dnsmasqOf(home);
    assert.ok(d, 'dnsmasq runs');
    assert.ok(d.argv.includes(`--interface=${BRIDGE}`));
    assert.ok(d.argv.includes('--conf-file=/dev/null'));
    assert.ok(d.argv.includes(`--dhcp-host=${MAC_A},192.168.211.10`));

    const kinds = r.resources.map((x) => `${x.kind}:${x.id}`).sort();
    assert.deepEqual(kinds, [`linux-bridge:${BRIDGE}`, `linux-dnsmasq:${BRIDGE}`, 'linux-nft-table:ip devcluster', 'linux-sysctl:net.ipv4.ip_forward', `linux-tap:${tapA}`].sort());
    assert.equal(r.resources.find((x) => x.kind === 'linux-sysctl')?.details?.['previous'], '0');
    assert.deepEqual((await registry(home))?.bridges[BRIDGE]?.users['a'], { mac: MAC_A, ip: '192.168.211.10', tap: tapA });
  });

  test('ensure again changes nothing: same interfaces, same table, same dnsmasq process, same records', async () => {
    const before = { net: await snapshot(host), dnsmasq: (await dnsmasqOf(home))?.pid, reg: await registry(home) };
    const r = await worker(host, { home, profile: 'a', op: 'ensure', mac: MAC_A });
    expectOk(r);
    assert.equal(await snapshot(host), before.net);
    assert.equal((await dnsmasqOf(home))?.pid, before.dnsmasq);
    assert.deepEqual(await registry(home), before.reg);
    assert.equal(r.resources.length, 5);
  });

  test('a second profile reuses the bridge and subnet, gets the next address, and dnsmasq serves both reservations', async () => {
    const r = await worker(host, { home, profile: 'b', op: 'ensure', mac: MAC_B });
    const result = expectOk(r);
    assert.ok(result);
    tapB = result.tap;
    assert.notEqual(tapB, tapA);
    assert.deepEqual(result.plan['guestAddress'], { kind: 'static', cidr: '192.168.211.11/24', gateway: '192.168.211.1' });
    assert.equal(result.plan['subnet'], '192.168.211.0/24');
    assert.equal((await links(host)).filter((l) => l.linkinfo?.info_kind === 'bridge').length, 1);
    assert.equal((await link(host, tapB))?.master, BRIDGE);
    const d = await dnsmasqOf(home);
    assert.ok(d?.argv.includes(`--dhcp-host=${MAC_A},192.168.211.10`));
    assert.ok(d?.argv.includes(`--dhcp-host=${MAC_B},192.168.211.11`));
    assert.deepEqual(masqueradedSubnets((await ourTable(host)) ?? []), ['192.168.211.0/24']);
  });

  test('a static-ip another profile holds is refused; a free one is used', async () => {
    const taken = await worker(host, { home, profile: 'c', op: 'ensure', mac: '52:54:00:d0:00:0c', settings: { 'static-ip': '192.168.211.11' } });
    assert.equal(taken.ok, false);
    assert.equal(taken.error?.id, 'NETWORK_ADDRESS_UNAVAILABLE');
    assert.match(taken.error?.message ?? '', /192\.168\.211\.11 is already used by profile b/);
    assert.deepEqual(taken.resources, []);
    const free = await worker(host, { home, profile: 'c', op: 'ensure', mac: '52:54:00:d0:00:0c', settings: { 'static-ip': '192.168.211.50' } });
    assert.equal(free.result?.plan['guestAddress'] && (free.result.plan['guestAddress'] as { cidr: string }).cidr, '192.168.211.50/24');
    expectOk(await worker(host, { home, profile: 'c', op: 'teardown' }));
    assert.equal((await registry(home))?.bridges[BRIDGE]?.users['c'], undefined);
    assert.ok(!(await dnsmasqOf(home))?.argv.some((a) => a.includes('192.168.211.50')));
  });

  test('a client on the bridge gets its reservation by DHCP, resolves through dnsmasq, and reaches the outside masqueraded', async () => {
    const guest = await lab.ns('g');
    const outside = await lab.ns('o');
    const gv = `vg${RUN}`;
    const uv = `vu${RUN}`;
    // The "VM": a veth whose host end sits in the bridge, carrying profile a's MAC.
    await inNs(host, 'ip', ['link', 'add', gv, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guest]);
    await inNs(host, 'ip', ['link', 'set', gv, 'master', BRIDGE, 'up']);
    await inNs(guest, 'ip', ['link', 'set', 'eth0', 'address', MAC_A, 'up']);
    await inNs(guest, 'ip', ['route', 'add', 'default', 'dev', 'eth0']);
    // The "internet": another namespace behind the host's uplink.
    await inNs(host, 'ip', ['link', 'add', uv, 'type', 'veth', 'peer', 'name', 'up1', 'netns', outside]);
    await inNs(host, 'ip', ['addr', 'add', '10.99.0.1/24', 'dev', uv]);
    await inNs(host, 'ip', ['link', 'set', uv, 'up']);
    await inNs(outside, 'ip', ['addr', 'add', '10.99.0.2/24', 'dev', 'up1']);
    await inNs(outside, 'ip', ['link', 'set', 'up1', 'up']);

    const lease = JSON.parse(await inNs(guest, process.execPath, [DHCP_PROBE, MAC_A])) as Record<string, unknown>;
    assert.deepEqual(lease, { ok: true, offered: '192.168.211.10', acked: '192.168.211.10', netmask: '255.255.255.0', router: ['192.168.211.1'], dns: ['192.168.211.1'], server: '192.168.211.1' });
    const leases = await readFile(join(home, 'network', BRIDGE, 'dnsmasq.leases'), 'utf8');
    assert.match(leases, new RegExp(`${MAC_A} 192\\.168\\.211\\.10 `));

    // Configure the address as the seed's static network-config would.
    await inNs(guest, 'ip', ['route', 'del', 'default', 'dev', 'eth0']);
    await inNs(guest, 'ip', ['addr', 'add', '192.168.211.10/24', 'dev', 'eth0']);
    await inNs(guest, 'ip', ['route', 'add', 'default', 'via', '192.168.211.1']);

    const resolved = await inNs(guest, process.execPath, [
      '-e',
      "const r = new (require('node:dns').promises.Resolver)({ timeout: 2000, tries: 3 }); r.setServers(['192.168.211.1']); r.resolve4('host.devcluster.internal').then((a) => console.log(JSON.stringify(a)), (e) => console.log(JSON.stringify(String(e))))",
    ]);
    assert.deepEqual(JSON.parse(resolved), ['192.168.211.1']);

    const server = lab.background(
      spawn('ip', ['netns', 'exec', outside, process.execPath, '-e', "require('node:net').createServer((s) => s.end(s.remoteAddress)).listen(7777, '10.99.0.2', () => console.log('listening'))"], { stdio: ['ignore', 'pipe', 'inherit'] }),
    );
    await new Promise<void>((resolve, reject) => {
      server.stdout?.once('data', () => resolve());
      server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
    });
    // Without masquerading the outside has no route back and the connection never completes: give up and say so.
    const seenAs = await inNs(guest, process.execPath, [
      '-e',
      "const s = require('node:net').connect(7777, '10.99.0.2'); let d = ''; s.setTimeout(10000, () => { console.log('no answer'); process.exit(0); }); s.on('data', (c) => (d += c)); s.on('end', () => console.log(d))",
    ]);
    assert.equal(seenAs.trim(), '10.99.0.1', 'the outside sees the host address: masqueraded');
    server.kill('SIGTERM');
  });

  test('ensureTap recreates a removed tap; after a "reboot" it rebuilds bridge, table, ip_forward and dnsmasq', async () => {
    const pid = (await dnsmasqOf(home))?.pid;
    await inNs(host, 'ip', ['link', 'del', tapA]);
    expectOk(await worker(host, { home, profile: 'a', op: 'ensureTap', tap: tapA }));
    const tap = await link(host, tapA);
    assert.equal(tap?.master, BRIDGE);
    assert.ok(tap?.flags.includes('UP'));
    assert.equal((await dnsmasqOf(home))?.pid, pid, 'dnsmasq untouched');

    // What a reboot loses: every interface, the ruleset, the sysctl, the daemon.
    assert.ok(pid);
    process.kill(pid, 'SIGTERM');
    for (const dev of [tapA, tapB, BRIDGE]) await inNs(host, 'ip', ['link', 'del', dev]);
    await inNs(host, 'nft', ['delete', 'table', 'ip', 'devcluster']);
    await inNs(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);

    expectOk(await worker(host, { home, profile: 'a', op: 'ensureTap', tap: tapA }));
    expectOk(await worker(host, { home, profile: 'b', op: 'ensureTap', tap: tapB }));
    assert.deepEqual(await addresses(host, BRIDGE), ['192.168.211.1/24']);
    assert.equal((await link(host, tapA))?.master, BRIDGE);
    assert.equal((await link(host, tapB))?.master, BRIDGE);
    assert.deepEqual(masqueradedSubnets((await ourTable(host)) ?? []), ['192.168.211.0/24']);
    assert.equal(await ipForward(host), '1');
    const d = await dnsmasqOf(home);
    assert.ok(d?.argv.includes(`--dhcp-host=${MAC_A},192.168.211.10`) && d.argv.includes(`--dhcp-host=${MAC_B},192.168.211.11`));
    // ip_forward was off before devcluster first set it, and that is what the last teardown restores.
    assert.equal((await readFile(join(home, 'network', 'bridges.json'), 'utf8')).includes('"previous": "0"'), true);
  });

  test('teardown of one profile keeps the bridge for the other; the last one removes everything and restores ip_forward', async () => {
    const ta = await worker(host, { home, profile: 'a', op: 'teardown' });
    expectOk(ta);
    assert.deepEqual(ta.resources, []);
    assert.equal(await link(host, tapA), undefined);
    assert.ok(await link(host, BRIDGE));
    assert.ok(await ourTable(host));
    assert.equal(await ipForward(host), '1');
    const d = await dnsmasqOf(home);
    assert.ok(d);
    assert.ok(!d.argv.some((a) => a.includes(MAC_A)), 'a reservation is gone');
    assert.ok(d.argv.includes(`--dhcp-host=${MAC_B},192.168.211.11`));

    const tb = await worker(host, { home, profile: 'b', op: 'teardown' });
    expectOk(tb);
    assert.deepEqual(tb.resources, []);
    const left = await links(host);
    assert.deepEqual(left.filter((l) => l.ifname === BRIDGE || l.ifname.startsWith('dc-')), []);
    assert.equal(await ourTable(host), undefined);
    assert.equal(await dnsmasqOf(home), undefined);
    assert.ok(!running(d.pid), 'dnsmasq process is gone');
    assert.equal(await ipForward(host), '0');
    assert.equal(await registry(home), undefined);
    // The test's own veths were never devcluster's and are still there.
    assert.ok(left.some((l) => l.ifname === `vg${RUN}`) && left.some((l) => l.ifname === `vu${RUN}`));
    // Teardown again is a no-op.
    expectOk(await worker(host, { home, profile: 'b', op: 'teardown' }));
  });
});

describe('bridged network: the subnet avoids what the host uses; firewall drops are reported, not edited', { skip: SKIP }, () => {
  const lab = new Lab();
  let host = '';
  let filterBefore = '';
  before(async () => {
    host = await lab.ns('s');
    // A veth end stands in for a host NIC (kernels without the dummy driver exist).
    await inNs(host, 'ip', ['link', 'add', 'dctdummy', 'type', 'veth', 'peer', 'name', 'dctdummy-p']);
    await inNs(host, 'ip', ['addr', 'add', '192.168.211.5/24', 'dev', 'dctdummy']);
    await inNs(host, 'ip', ['link', 'set', 'dctdummy', 'up']);
    await inNs(host, 'ip', ['route', 'add', 'blackhole', '192.168.212.0/24']);
    await inNs(host, 'nft', ['-f', '-'], { input: 'table ip filter {\n  chain FORWARD {\n    type filter hook forward priority 0; policy drop;\n  }\n}\n' });
    filterBefore = await inNs(host, 'nft', ['-j', 'list', 'table', 'ip', 'filter']);
  });
  after(() => lab.cleanup());

  test('an explicit subnet that collides with an address on the host is refused before anything is created', async () => {
    const home = await lab.home();
    const before = await snapshot(host);
    const r = await worker(host, { home, profile: 'x', op: 'ensure', mac: MAC_A, settings: { subnet: '192.168.211.0/24' } });
    assert.equal(r.ok, false);
    assert.equal(r.error?.id, 'NETWORK_SUBNET_IN_USE');
    assert.match(r.error?.message ?? '', /192\.168\.211\.5\/24 on dctdummy/);
    assert.deepEqual(r.resources, []);
    assert.equal(await snapshot(host), before);
    assert.equal(await registry(home), undefined);
  });

  test('subnet=auto skips the colliding address and route, and the forward drop policy is reported with a fix', async () => {
    const home = await lab.home();
    const r = await worker(host, { home, profile: 'y', op: 'ensure', mac: MAC_A });
    const result = expectOk(r);
    assert.equal(result?.plan['subnet'], '192.168.213.0/24');
    assert.deepEqual(result?.plan['guestAddress'], { kind: 'static', cidr: '192.168.213.10/24', gateway: '192.168.213.1' });
    assert.deepEqual(await addresses(host, BRIDGE), ['192.168.213.1/24']);
    const warning = r.reports.find((x) => x.level === 'warn' && /ip filter FORWARD/.test(x.message));
    assert.ok(warning, JSON.stringify(r.reports));
    assert.match(warning.message, /policy drop/);
    assert.match(warning.message, /nft insert rule ip filter FORWARD iifname "devcluster0" accept/);
    assert.equal(await inNs(host, 'nft', ['-j', 'list', 'table', 'ip', 'filter']), filterBefore);

    expectOk(await worker(host, { home, profile: 'y', op: 'teardown' }));
    assert.equal(await link(host, BRIDGE), undefined);
    assert.deepEqual(await addresses(host, 'dctdummy'), ['192.168.211.5/24']);
    assert.match(await inNs(host, 'ip', ['-4', 'route', 'show', 'type', 'blackhole']), /192\.168\.212\.0\/24/);
    assert.equal(await inNs(host, 'nft', ['-j', 'list', 'table', 'ip', 'filter']), filterBefore);
  });
});

describe('bridged network: what devcluster did not create is refused and left alone', { skip: SKIP }, () => {
  const lab = new Lab();
  let host = '';
  before(async () => {
    host = await lab.ns('f');
    await inNs(host, 'ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    await inNs(host, 'ip', ['addr', 'add', '10.77.0.1/24', 'dev', BRIDGE]);
  });
  after(() => lab.cleanup());

  test('a bridge named devcluster0 that devcluster did not create: refused, untouched, nothing else created', async () => {
    const home = await lab.home();
    const before = await snapshot(host);
    const r = await worker(host, { home, profile: 'a', op: 'ensure', mac: MAC_A });
    assert.equal(r.ok, false);
    assert.equal(r.error?.id, 'NETWORK_NOT_OURS');
    assert.match(r.error?.message ?? '', /devcluster0 already exists .*not created by devcluster/);
    assert.match(r.error?.advice ?? '', /--qemu-bridge=/);
    assert.deepEqual(r.resources, []);
    assert.equal(await snapshot(host), before);
    expectOk(await worker(host, { home, profile: 'a', op: 'teardown' }));
    assert.equal(await snapshot(host), before);
  });

  test('another bridge name works beside it, and its teardown leaves the foreign bridge as it was', async () => {
    const home = await lab.home();
    const foreign = JSON.stringify(await link(host, BRIDGE));
    const r = await worker(host, { home, profile: 'a', op: 'ensure', mac: MAC_A, settings: { 'qemu-bridge': 'devcluster1' } });
    expectOk(r);
    assert.equal((await link(host, r.result?.tap ?? ''))?.master, 'devcluster1');
    expectOk(await worker(host, { home, profile: 'a', op: 'teardown' }));
    assert.equal(await link(host, 'devcluster1'), undefined);
    assert.equal(JSON.stringify(await link(host, BRIDGE)), foreign);
    assert.deepEqual(await addresses(host, BRIDGE), ['10.77.0.1/24']);
  });

  test('an nftables table ip devcluster this home did not create is refused and untouched', async () => {
    const home = await lab.home();
    await inNs(host, 'nft', ['add', 'table', 'ip', 'devcluster']);
    const before = await snapshot(host);
    const r = await worker(host, { home, profile: 'a', op: 'ensure', mac: MAC_A, settings: { 'qemu-bridge': 'devcluster1' } });
    assert.equal(r.error?.id, 'NETWORK_NOT_OURS');
    assert.match(r.error?.message ?? '', /nftables table ip devcluster/);
    assert.equal(await snapshot(host), before);
    await inNs(host, 'nft', ['delete', 'table', 'ip', 'devcluster']);
  });
});

describe('bridged network: a failed ensure is undone by teardown, and only what it made', { skip: SKIP }, () => {
  const lab = new Lab();
  let host = '';
  let home = '';
  let fakeBin = '';
  before(async () => {
    host = await lab.ns('p');
    home = await lab.home();
    await inNs(host, 'ip', ['link', 'add', 'keep0', 'type', 'veth', 'peer', 'name', 'keep1']);
    await inNs(host, 'nft', ['-f', '-'], { input: 'table inet keep {\n  chain c {\n    type filter hook forward priority 0; policy accept;\n  }\n}\n' });
    fakeBin = join(home, 'fake-bin');
    await mkdir(fakeBin);
    await writeFile(join(fakeBin, 'dnsmasq'), '#!/bin/sh\necho "dnsmasq: failed to create listening socket: simulated" >&2\nexit 2\n');
    await chmod(join(fakeBin, 'dnsmasq'), 0o755);
  });
  after(() => lab.cleanup());

  test('a dnsmasq that fails to start leaves a partial network recorded in the state', async () => {
    const r = await worker(host, { home, profile: 'a', op: 'ensure', mac: MAC_A }, { ...process.env, PATH: `${fakeBin}:${process.env['PATH'] ?? ''}` });
    assert.equal(r.ok, false);
    assert.equal(r.error?.id, 'NETWORK_SETUP_FAILED');
    assert.match(r.error?.message ?? '', /starting dnsmasq on devcluster0 failed: .*simulated/);
    assert.ok(await link(host, BRIDGE));
    assert.ok(await ourTable(host));
    assert.equal(await ipForward(host), '1');
    assert.deepEqual(r.resources.map((x) => x.kind).sort(), ['linux-bridge', 'linux-dnsmasq', 'linux-nft-table', 'linux-sysctl', 'linux-tap']);
  });

  test('teardown removes the partial network and restores ip_forward; the foreign veth and table stay', async () => {
    const keepTable = await inNs(host, 'nft', ['-j', 'list', 'table', 'inet', 'keep']);
    const r = await worker(host, { home, profile: 'a', op: 'teardown' });
    expectOk(r);
    assert.deepEqual(r.resources, []);
    const left = (await links(host)).map((l) => l.ifname).sort();
    assert.deepEqual(left, ['keep0', 'keep1', 'lo']);
    assert.equal(await ourTable(host), undefined);
    assert.equal(await ipForward(host), '0');
    assert.equal(await inNs(host, 'nft', ['-j', 'list', 'table', 'inet', 'keep']), keepTable);
    assert.equal(await registry(home), undefined);
  });
});

describe('bridged network: profiles starting and deleting at the same time', { skip: SKIP }, () => {
  const lab = new Lab();
  after(() => lab.cleanup());

  test('the network lock serialises them: distinct addresses, one bridge, one dnsmasq with every reservation, and a clean teardown', async () => {
    const host = await lab.ns('c');
    const home = await lab.home();
    const profiles = ['p1', 'p2', 'p3'];
    const macs = profiles.map((_, i) => `52:54:00:d0:01:0${i + 1}`);
    const results = await Promise.all(profiles.map((profile, i) => worker(host, { home, profile, op: 'ensure', mac: macs[i] ?? '' })));
    const ips = results.map((r) => ((expectOk(r)?.plan['guestAddress'] ?? {}) as { cidr?: string }).cidr).sort();
    assert.deepEqual(ips, ['192.168.211.10/24', '192.168.211.11/24', '192.168.211.12/24']);
    assert.equal((await links(host)).filter((l) => l.linkinfo?.info_kind === 'bridge').length, 1);
    const reg = await registry(home);
    assert.deepEqual(Object.keys(reg?.bridges[BRIDGE]?.users ?? {}).sort(), profiles);
    const d = await dnsmasqOf(home);
    for (const [i, mac] of macs.entries()) {
      const ip = reg?.bridges[BRIDGE]?.users[profiles[i] ?? '']?.ip;
      assert.ok(d?.argv.includes(`--dhcp-host=${mac},${ip}`), `${mac} reserved`);
    }
    const down = await Promise.all(profiles.map((profile) => worker(host, { home, profile, op: 'teardown' })));
    for (const r of down) assert.deepEqual(expectOk(r) === null && r.resources, []);
    assert.deepEqual((await links(host)).map((l) => l.ifname), ['lo']);
    assert.equal(await ourTable(host), undefined);
    assert.equal(await ipForward(host), '0');
    assert.equal(await dnsmasqOf(home), undefined);
    assert.equal(await registry(home), undefined);
  });
});

describe('bridged network: needs root', { skip: SKIP }, () => {
  const lab = new Lab();
  after(() => lab.cleanup());

  test('an unprivileged user gets QEMU_BRIDGE_NEEDS_ROOT with the sudo advice, and nothing is created', async (t) => {
    // The worker runs as uid 65534, which must be able to read this checkout
    // (a clone inside a 0700 temp directory is not).
    const readable = await exec('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-r', WORKER]);
    if (readable.code !== 0) {
      // Under CI this throws: the checkout must be readable by uid 65534 there.
      t.skip(String(skipUnlessPresent(`uid 65534 cannot read ${WORKER} (check out the repository where every user can read it)`)));
      return;
    }
    const ns = await lab.ns('u');
    const home = await lab.home();
    await chmod(home, 0o777);
    const before = await snapshot(ns);
    const r = await worker(ns, { home, profile: 'a', op: 'ensure', mac: MAC_A }, process.env, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
    assert.equal(r.error?.id, 'QEMU_BRIDGE_NEEDS_ROOT');
    assert.match(r.error?.advice ?? '', /sudo devcluster start --qemu-network=bridged/);
    assert.match(r.error?.advice ?? '', /--qemu-network=user/);
    assert.deepEqual(r.resources, []);
    assert.equal(await snapshot(ns), before);
  });
});

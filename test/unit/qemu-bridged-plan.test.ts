import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bridgeMarker,
  chooseAddress,
  chooseSubnet,
  dnsmasqArgs,
  expectedNftSignature,
  firewallBlockers,
  hostNetworks,
  nftHasTable,
  nftSignatureOf,
  renderNftRuleset,
  tapMarker,
  tapNameFor,
} from '../../drivers/qemu/bridged-plan.ts';
import type { HostNet } from '../../drivers/qemu/bridged-plan.ts';
import { formatCidr as formatNet, netsOverlap as overlaps, parseCidr } from '../../src/host/ipv4.ts';

const net = (cidr: string) => {
  const n = parseCidr(cidr);
  assert.ok(n, cidr);
  return n;
};

test('CIDRs parse with host bits cleared, bare addresses are /32, nonsense is refused', () => {
  assert.equal(formatNet(net('192.168.211.7/24')), '192.168.211.0/24');
  assert.equal(formatNet(net('10.0.0.1')), '10.0.0.1/32');
  for (const bad of ['192.168.211.0/33', '300.1.1.1/24', 'default', '1.2.3.4/24/1', '1.2.3.4/']) assert.equal(parseCidr(bad), undefined, bad);
  assert.ok(overlaps(net('10.0.0.0/8'), net('10.213.4.0/24')));
  assert.ok(overlaps(net('192.168.211.128/25'), net('192.168.211.0/24')));
  assert.ok(!overlaps(net('192.168.211.0/24'), net('192.168.212.0/24')));
});

// Shapes as printed by iproute2 6.1 `ip -j -4 route show table all` / `ip -j -4 addr show`.
const ROUTES = [
  { dst: 'default', gateway: '192.168.1.1', dev: 'wlan0', protocol: 'dhcp', flags: [] },
  { dst: '0.0.0.0/1', gateway: '10.8.0.1', dev: 'tun0', flags: [] },
  { dst: '128.0.0.0/1', gateway: '10.8.0.1', dev: 'tun0', flags: [] },
  { dst: '192.168.1.0/24', dev: 'wlan0', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.20', flags: [] },
  { type: 'blackhole', dst: '192.168.212.0/24', flags: [] },
  { type: 'local', dst: '127.0.0.1', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '127.0.0.1', flags: [] },
];
const ADDRS = [
  { ifindex: 1, ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  { ifindex: 5, ifname: 'docker0', addr_info: [{ family: 'inet', local: '192.168.211.5', prefixlen: 24 }] },
];

test('host networks come from routes of every table and from addresses; default and VPN half-routes are ignored', () => {
  const nets = hostNetworks(ROUTES, ADDRS);
  const shown = nets.map((n) => formatNet(n.net));
  assert.ok(shown.includes('192.168.1.0/24'));
  assert.ok(shown.includes('192.168.212.0/24'));
  assert.ok(shown.includes('127.0.0.1/32'));
  assert.ok(shown.includes('192.168.211.0/24'));
  assert.ok(!shown.some((s) => s.endsWith('/1') || s.endsWith('/0')));
  assert.match(nets.find((n) => formatNet(n.net) === '192.168.212.0/24')?.source ?? '', /blackhole route 192\.168\.212\.0\/24/);
  assert.match(nets.find((n) => n.dev === 'docker0')?.source ?? '', /address 192\.168\.211\.5\/24 on docker0/);
  assert.deepEqual(hostNetworks(undefined, 'garbage'), []);
});

test('subnet=auto takes the first candidate no route, address or other devcluster bridge overlaps', () => {
  const inUse = hostNetworks(ROUTES, ADDRS);
  const first = chooseSubnet('auto', inUse, []);
  assert.deepEqual(first.ok && formatNet(first.net), '192.168.213.0/24');
  const other: HostNet[] = [{ net: net('192.168.213.0/24'), source: 'devcluster bridge devcluster1', dev: 'devcluster1' }];
  const second = chooseSubnet('auto', inUse, other);
  assert.deepEqual(second.ok && formatNet(second.net), '192.168.214.0/24');
  const everything: HostNet[] = [
    { net: net('192.168.0.0/16'), source: 'route 192.168.0.0/16' },
    { net: net('10.0.0.0/8'), source: 'route 10.0.0.0/8 dev tun0' },
  ];
  const none = chooseSubnet('auto', everything, []);
  assert.equal(none.ok, false);
  assert.equal(!none.ok && none.reason, 'exhausted');
});

test('an explicit subnet that overlaps the host is refused with what it overlaps', () => {
  const r = chooseSubnet('192.168.0.0/16', hostNetworks(ROUTES, ADDRS), []);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.reason === 'in-use');
  const sources = !r.ok && r.reason === 'in-use' ? r.conflicts.map((c) => c.source) : [];
  assert.ok(sources.some((s) => s.includes('docker0')));
  assert.ok(sources.some((s) => s.includes('192.168.1.0/24')));
  const free = chooseSubnet('172.30.5.0/24', hostNetworks(ROUTES, ADDRS), []);
  assert.deepEqual(free.ok && formatNet(free.net), '172.30.5.0/24');
});

test('guest addresses: .10 upwards, a requested one when usable, never the gateway or a taken one', () => {
  const n = net('192.168.211.0/24');
  assert.deepEqual(chooseAddress(n, 'auto', new Map()), { ok: true, ip: '192.168.211.10' });
  assert.deepEqual(chooseAddress(n, 'auto', new Map([['192.168.211.10', 'a']])), { ok: true, ip: '192.168.211.11' });
  assert.deepEqual(chooseAddress(n, '192.168.211.50', new Map()), { ok: true, ip: '192.168.211.50' });
  const taken = chooseAddress(n, '192.168.211.10', new Map([['192.168.211.10', 'a']]));
  assert.ok(!taken.ok && /used by profile a/.test(taken.reason));
  for (const bad of ['192.168.211.1', '192.168.211.0', '192.168.211.255', '192.168.212.10']) assert.equal(chooseAddress(n, bad, new Map()).ok, false, bad);
  // A /29 has no .10: guests start after the gateway and stop before broadcast.
  const small = net('10.1.2.8/29');
  assert.deepEqual(chooseAddress(small, 'auto', new Map()), { ok: true, ip: '10.1.2.10' });
  const full = new Map(['10.1.2.10', '10.1.2.11', '10.1.2.12', '10.1.2.13', '10.1.2.14'].map((ip) => [ip, 'x']));
  assert.equal(chooseAddress(small, 'auto', full).ok, false);
  assert.deepEqual(chooseAddress(net('10.1.2.16/28'), 'auto', new Map()), { ok: true, ip: '10.1.2.18' });
});

test('tap names fit the 15-character limit and differ per profile and per home; markers name the home', () => {
  const a = tapNameFor('/root/.devcluster', 'a');
  assert.match(a, /^dc-[0-9a-f]{12}$/);
  assert.equal(a.length, 15);
  assert.equal(tapNameFor('/root/.devcluster', 'a'), a);
  assert.notEqual(tapNameFor('/root/.devcluster', 'b'), a);
  assert.notEqual(tapNameFor('/home/x/.devcluster', 'a'), a);
  assert.notEqual(bridgeMarker('/a'), bridgeMarker('/b'));
  assert.match(tapMarker('/a', 'dev-2'), /^devcluster tap [0-9a-f]{8} dev-2$/);
});

test('the nftables ruleset replaces only our table and masquerades each subnet to the outside', () => {
  const text = renderNftRuleset([
    { bridge: 'devcluster0', subnet: '192.168.211.0/24' },
    { bridge: 'devcluster1', subnet: '10.213.0.0/24' },
  ]);
  const lines = text.split('\n');
  assert.deepEqual(lines.slice(0, 3), ['table ip devcluster', 'delete table ip devcluster', 'table ip devcluster {']);
  assert.ok(lines.includes('    ip saddr 192.168.211.0/24 ip daddr != 192.168.211.0/24 oifname != "devcluster0" counter masquerade'));
  assert.ok(lines.includes('    ip saddr 10.213.0.0/24 ip daddr != 10.213.0.0/24 oifname != "devcluster1" counter masquerade'));
  assert.ok(lines.includes('    iifname "devcluster1" counter accept'));
  assert.ok(lines.includes('    oifname "devcluster0" counter accept'));
  assert.ok(!/flush ruleset|table (inet|ip6|bridge) /.test(text));
  assert.throws(() => renderNftRuleset([{ bridge: 'x"; flush ruleset', subnet: '10.0.0.0/24' }]));
});

// `nft -j list table ip devcluster` (nftables 1.0.6) after applying renderNftRuleset for devcluster0.
const OUR_TABLE = {
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family: 'ip', name: 'devcluster', handle: 4 } },
    { chain: { family: 'ip', table: 'devcluster', name: 'postrouting', handle: 1, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
    { chain: { family: 'ip', table: 'devcluster', name: 'forward', handle: 2, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
    {
      rule: {
        family: 'ip', table: 'devcluster', chain: 'postrouting', handle: 3,
        expr: [
          { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { prefix: { addr: '192.168.211.0', len: 24 } } } },
          { match: { op: '!=', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: { prefix: { addr: '192.168.211.0', len: 24 } } } },
          { match: { op: '!=', left: { meta: { key: 'oifname' } }, right: 'devcluster0' } },
          { counter: { packets: 0, bytes: 0 } },
          { masquerade: null },
        ],
      },
    },
    { rule: { family: 'ip', table: 'devcluster', chain: 'forward', handle: 4, expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'devcluster0' } }, { counter: { packets: 0, bytes: 0 } }, { accept: null }] } },
    { rule: { family: 'ip', table: 'devcluster', chain: 'forward', handle: 5, expr: [{ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'devcluster0' } }, { counter: { packets: 0, bytes: 0 } }, { accept: null }] } },
  ],
};

test('the installed table is recognised as up to date, and as stale when a bridge is added or a rule is missing', () => {
  assert.ok(nftHasTable(OUR_TABLE));
  const one = [{ bridge: 'devcluster0', subnet: '192.168.211.0/24' }];
  assert.deepEqual(nftSignatureOf(OUR_TABLE), expectedNftSignature(one));
  assert.notDeepEqual(nftSignatureOf(OUR_TABLE), expectedNftSignature([...one, { bridge: 'devcluster1', subnet: '10.213.0.0/24' }]));
  const missing = { nftables: OUR_TABLE.nftables.filter((i) => !('rule' in i && i.rule?.handle === 3)) };
  assert.notDeepEqual(nftSignatureOf(missing), expectedNftSignature(one));
  assert.ok(!nftHasTable({ nftables: [{ table: { family: 'inet', name: 'devcluster' } }] }));
});

test('firewall blockers: a drop policy or a final unconditional reject in another table, never our own', () => {
  const ruleset = {
    nftables: [
      { chain: { family: 'ip', table: 'filter', name: 'FORWARD', type: 'filter', hook: 'forward', prio: 0, policy: 'drop' } },
      { chain: { family: 'inet', table: 'firewalld', name: 'filter_INPUT', type: 'filter', hook: 'input', prio: 10, policy: 'accept' } },
      { rule: { family: 'inet', table: 'firewalld', chain: 'filter_INPUT', expr: [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: 'established' } }, { accept: null }] } },
      { rule: { family: 'inet', table: 'firewalld', chain: 'filter_INPUT', expr: [{ counter: { packets: 0, bytes: 0 } }, { reject: { type: 'icmpx', expr: 'admin-prohibited' } }] } },
      { chain: { family: 'inet', table: 'mine', name: 'fwd', type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
      { rule: { family: 'inet', table: 'mine', chain: 'fwd', expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'eth9' } }, { drop: null }] } },
      { chain: { family: 'ip', table: 'nat', name: 'POSTROUTING', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
      { chain: { family: 'ip', table: 'devcluster', name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'drop' } },
    ],
  };
  assert.deepEqual(firewallBlockers(ruleset), [
    { hook: 'forward', family: 'ip', table: 'filter', chain: 'FORWARD', how: 'policy drop' },
    { hook: 'input', family: 'inet', table: 'firewalld', chain: 'filter_INPUT', how: 'final rule reject' },
  ]);
  assert.deepEqual(firewallBlockers(undefined), []);
});

test('dnsmasq serves only the bridge, only the reservations, and ignores the host configuration', () => {
  const args = dnsmasqArgs({
    bridge: 'devcluster0',
    subnet: '192.168.211.0/24',
    files: { pidFile: '/h/network/devcluster0/dnsmasq.pid', leaseFile: '/h/l', logFile: '/h/log' },
    hosts: [
      { mac: '52:54:00:00:00:0b', ip: '192.168.211.11' },
      { mac: '52:54:00:00:00:0a', ip: '192.168.211.10' },
    ],
  });
  for (const a of ['--conf-file=/dev/null', '--interface=devcluster0', '--except-interface=lo', '--pid-file=/h/network/devcluster0/dnsmasq.pid', '--dhcp-leasefile=/h/l', '--dhcp-range=192.168.211.0,static,255.255.255.0,12h', '--dhcp-option=option:router,192.168.211.1', '--no-hosts']) {
    assert.ok(args.includes(a), a);
  }
  assert.deepEqual(args.filter((a) => a.startsWith('--dhcp-host=')), ['--dhcp-host=52:54:00:00:00:0a,192.168.211.10', '--dhcp-host=52:54:00:00:00:0b,192.168.211.11']);
  assert.ok(args.includes('--bind-dynamic') || args.includes('--bind-interfaces'));
  assert.throws(() => dnsmasqArgs({ bridge: 'a b', subnet: '10.0.0.0/24', files: { pidFile: 'p', leaseFile: 'l', logFile: 'g' }, hosts: [] }));
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  adapterByDeviceId,
  chooseNatSubnet,
  connectedVpnAdapters,
  DEFAULT_NAT_SUBNET,
  natConflict,
  neighborAddressFor,
  parseHostAddresses,
  parseNeighbors,
  parseNetAdapters,
  parseNetNats,
  parseRoutes,
  routesOverlapping,
  subnetBlockers,
} from '../../drivers/hyperv/host-network.ts';
import type { HostRoute, NetNatInfo } from '../../drivers/hyperv/host-network.ts';
import { parsePowerShellJson } from '../../drivers/hyperv/output.ts';
import { REPO } from '../helpers/cli.ts';

/** The Windows host's network from fixtures (test/fixtures/hyperv/README.md), and the NAT subnet planning on top. */

const fx = (name: string) => parsePowerShellJson(readFileSync(join(REPO, 'test', 'fixtures', 'hyperv', name), 'utf8'));
const none = { routes: [], addresses: [], nats: [] };
const route = (destinationPrefix: string, interfaceIndex = 7, interfaceAlias = 'Ethernet'): HostRoute => ({ destinationPrefix, interfaceAlias, interfaceIndex });

describe('parsers', () => {
  test('Get-NetNat: nothing, a bare object, an array with an inactive and an IPv6 NAT', () => {
    assert.deepEqual(parseNetNats(fx('get-netnat-empty.txt')), []);
    assert.deepEqual(parseNetNats(fx('get-netnat-single.json')), [{ name: 'devcluster-nat', internalPrefix: '172.31.240.0/24', active: true }]);
    assert.deepEqual(parseNetNats(fx('get-netnat-array.json')), [
      { name: 'DockerNAT', internalPrefix: '172.20.0.0/16', active: true },
      { name: 'lab', internalPrefix: '172.31.240.128/25', active: false },
      { name: 'wsl-v6', internalPrefix: 'fd00:1::/64', active: true },
    ]);
  });

  test('Get-NetRoute with CRLF: every IPv4 route, on-link next hops dropped', () => {
    const routes = parseRoutes(fx('get-netroute-vpn.json'));
    assert.equal(routes.length, 8);
    assert.deepEqual(routes[3], { destinationPrefix: '172.31.0.0/16', interfaceAlias: 'Ethernet 4', interfaceIndex: 27, nextHop: '10.8.0.1' });
    assert.deepEqual(routes[1], { destinationPrefix: '192.168.1.0/24', interfaceAlias: 'Wi-Fi', interfaceIndex: 18 });
    assert.deepEqual(parseRoutes({ DestinationPrefix: '::/0', InterfaceAlias: 'Wi-Fi', InterfaceIndex: 18 }), []);
  });

  test('Get-NetIPAddress: IPv6 rows dropped, a bare object read', () => {
    const addresses = parseHostAddresses(fx('get-netipaddress.json'));
    assert.deepEqual(
      addresses.map((a) => `${a.ipAddress}/${a.prefixLength}@${a.interfaceIndex}`),
      ['192.168.1.23/24@18', '172.31.241.1/24@31', '127.0.0.1/8@1', '169.254.12.7/16@22'],
    );
    assert.deepEqual(parseHostAddresses(fx('get-netipaddress-single.json')), [{ ipAddress: '172.31.240.1', prefixLength: 24, interfaceAlias: 'vEthernet (devcluster)', interfaceIndex: 41 }]);
  });

  test('Get-NetAdapter: MACs normalized, the host vNIC found by DeviceId in any case', () => {
    const adapters = parseNetAdapters(fx('get-netadapter.json'));
    assert.equal(adapters.length, 5);
    assert.equal(adapters[0]?.macAddress, '985FD3340CD3');
    assert.equal(adapterByDeviceId(adapters, '{5A7C2E9B-3D41-4F8A-9B6C-0E1D2F3A4B5C}')?.name, 'vEthernet (devcluster)');
    assert.equal(adapters.find((a) => a.ifIndex === 9)?.name, 'Ethernet (Kabel)');
    assert.equal(adapterByDeviceId(adapters, '{00000000-0000-0000-0000-000000000000}'), undefined);
  });

  test('VPN adapters: connected ones only (AnyConnect Up, TAP disconnected), a single WireGuard object', () => {
    assert.deepEqual(connectedVpnAdapters(parseNetAdapters(fx('get-netadapter.json'))).map((a) => a.name), ['Ethernet 4']);
    assert.deepEqual(connectedVpnAdapters(parseNetAdapters(fx('get-netadapter-wireguard-single.json'))).map((a) => a.name), ['wg0']);
  });

  test('Get-NetNeighbor: numeric states; the guest by MAC, never an unreachable or incomplete entry', () => {
    const neighbors = parseNeighbors(fx('get-netneighbor.json'));
    assert.equal(neighbors[0]?.state, 'stale');
    assert.equal(neighbors[2]?.linkLayerAddress, undefined);
    assert.equal(neighborAddressFor(neighbors, '00155DC0FF01'), '172.31.240.2');
    assert.equal(neighborAddressFor(neighbors, '00:15:5d:c0:ff:01'), '172.31.240.2');
    assert.equal(neighborAddressFor(neighbors, '00155DC0FF99'), undefined);
    assert.equal(neighborAddressFor(neighbors, 'garbage'), undefined);
  });
});

describe('chooseNatSubnet', () => {
  test('an empty host gets the default, gateway .1, guest .2', () => {
    assert.deepEqual(chooseNatSubnet(none), { subnet: DEFAULT_NAT_SUBNET, gateway: '172.31.240.1', guest: '172.31.240.2' });
  });

  test('the same input gives the same answer', () => {
    const taken = { routes: parseRoutes(fx('get-netroute-home.json')), addresses: parseHostAddresses(fx('get-netipaddress.json')), nats: parseNetNats(fx('get-netnat-array.json')) };
    assert.deepEqual(chooseNatSubnet(taken), chooseNatSubnet(structuredClone(taken)));
  });

  test('a VPN route over all of 172.31.0.0/16 pushes the choice out of it', () => {
    const plan = chooseNatSubnet({ routes: parseRoutes(fx('get-netroute-vpn.json')), addresses: [], nats: [] });
    assert.deepEqual(plan, { subnet: '172.30.0.0/24', gateway: '172.30.0.1', guest: '172.30.0.2' });
  });

  test('a host /32 route (a VPN pushing one server) is avoided as well', () => {
    assert.equal(chooseNatSubnet({ routes: [route('172.31.240.77/32')], addresses: [], nats: [] })?.subnet, '172.31.241.0/24');
  });

  test('the default route, multicast and broadcast block nothing', () => {
    assert.equal(chooseNatSubnet({ routes: [route('0.0.0.0/0'), route('224.0.0.0/4'), route('255.255.255.255/32')], addresses: [], nats: [] })?.subnet, DEFAULT_NAT_SUBNET);
  });

  test('an address on another interface (the Default Switch) and a NetNat are avoided; IPv6 NATs ignored', () => {
    const plan = chooseNatSubnet({
      routes: [],
      addresses: [{ ipAddress: '172.31.240.1', prefixLength: 24, interfaceAlias: 'vEthernet (Default Switch)', interfaceIndex: 31 }],
      nats: [
        { name: 'other', internalPrefix: '172.31.241.0/24', active: true },
        { name: 'v6', internalPrefix: 'fd00::/8', active: true },
      ],
    });
    assert.equal(plan?.subnet, '172.31.242.0/24');
  });

  test('our own interface and NetNat do not push our subnet away', () => {
    const routes = parseRoutes(fx('get-netroute-home.json'));
    const nats: NetNatInfo[] = [{ name: 'devcluster-nat', internalPrefix: '172.31.240.0/24', active: true }];
    const addresses = parseHostAddresses(fx('get-netipaddress-single.json'));
    assert.equal(chooseNatSubnet({ routes, addresses, nats }, '172.31.240.0/24'), undefined);
    assert.equal(chooseNatSubnet({ routes, addresses, nats })?.subnet, '172.31.242.0/24');
    assert.equal(chooseNatSubnet({ routes, addresses, nats, ownInterfaceIndexes: [41], ownNatName: 'devcluster-nat' }, '172.31.240.0/24')?.subnet, '172.31.240.0/24');
  });

  test('a preferred subnet (the user asked for it) is taken when free and never swapped for another when not; a bad one is refused', () => {
    assert.equal(chooseNatSubnet(none, '10.123.0.0/24')?.subnet, '10.123.0.0/24');
    assert.equal(chooseNatSubnet(none, '10.123.0.0/24')?.guest, '10.123.0.2');
    assert.equal(chooseNatSubnet(none, '10.123.0.0/24')?.gateway, '10.123.0.1');
    assert.equal(chooseNatSubnet({ routes: [route('10.0.0.0/8')], addresses: [], nats: [] }, '10.123.0.0/24'), undefined);
    assert.equal(chooseNatSubnet({ routes: [], addresses: [], nats: [{ name: 'x', internalPrefix: '10.123.0.128/25', active: false }] }, '10.123.0.0/24'), undefined);
    // A NetNat that already translates the asked-for subnet (same prefix, or Docker's /16 around it) is reused, not an obstacle.
    assert.equal(chooseNatSubnet({ routes: [], addresses: [], nats: [{ name: 'docker', internalPrefix: '10.123.0.0/16', active: true }] }, '10.123.7.0/24')?.subnet, '10.123.7.0/24');
    assert.equal(chooseNatSubnet({ routes: [], addresses: [], nats: [{ name: 'same', internalPrefix: '10.123.7.0/24', active: true }] }, '10.123.7.0/24')?.subnet, '10.123.7.0/24');
    // Without a preference, devcluster picks a subnet no NetNat touches, so its own NetNat can be made.
    assert.equal(chooseNatSubnet({ routes: [], addresses: [], nats: [{ name: 'docker', internalPrefix: '172.31.0.0/16', active: true }] })?.subnet, '172.30.0.0/24');
    assert.equal(chooseNatSubnet(none, 'not-a-subnet'), undefined);
    assert.equal(chooseNatSubnet(none, '10.0.0.1/31'), undefined);
  });

  test('undefined when the whole 172.16.0.0/12 is routed elsewhere', () => {
    assert.equal(chooseNatSubnet({ routes: [route('172.16.0.0/12')], addresses: [], nats: [] }), undefined);
  });
});

describe('subnetBlockers', () => {
  test('names each route, address and NetNat over a subnet, ours and the default route aside', () => {
    const taken = {
      routes: [...parseRoutes(fx('get-netroute-vpn.json')), route('172.31.240.0/24', 41)],
      addresses: parseHostAddresses(fx('get-netipaddress-single.json')),
      nats: parseNetNats(fx('get-netnat-array.json')),
      ownInterfaceIndexes: [41],
    };
    const b = subnetBlockers(taken, '172.31.240.0/24');
    assert.deepEqual(b.routes.map((r) => r.destinationPrefix), ['172.31.0.0/16']);
    assert.deepEqual(b.addresses, []);
    assert.deepEqual(b.nats.map((n) => n.name), ['lab']);
    assert.deepEqual(subnetBlockers(taken, 'garbage'), { routes: [], addresses: [], nats: [] });
  });
});

describe('routesOverlapping', () => {
  test('the VPN route over our subnet, not the default route nor our own interface', () => {
    const routes = parseRoutes(fx('get-netroute-vpn.json'));
    assert.deepEqual(routesOverlapping(routes, '172.31.240.0/24').map((r) => r.interfaceAlias), ['Ethernet 4']);
    assert.deepEqual(routesOverlapping(routes, '172.31.240.0/24', [27]), []);
    assert.deepEqual(routesOverlapping(routes, '10.200.0.0/24'), []);
  });
});

describe('natConflict', () => {
  const nats = parseNetNats(fx('get-netnat-array.json'));
  test('none when nothing overlaps', () => {
    assert.deepEqual(natConflict(nats, '10.50.0.0/24'), { kind: 'none' });
    assert.deepEqual(natConflict([], DEFAULT_NAT_SUBNET), { kind: 'none' });
  });
  test('an identical prefix is reused', () => {
    assert.deepEqual(natConflict(parseNetNats(fx('get-netnat-single.json')), '172.31.240.0/24'), { kind: 'reuse', name: 'devcluster-nat' });
  });
  test('a NAT whose prefix contains ours (Docker /16) already translates it: reused', () => {
    assert.deepEqual(natConflict(nats, '172.20.5.0/24'), { kind: 'reuse', name: 'DockerNAT' });
  });
  test('a smaller NAT inside ours is a conflict, named with its prefix', () => {
    assert.deepEqual(natConflict(nats, '172.31.240.0/24'), { kind: 'conflict', name: 'lab', prefix: '172.31.240.128/25' });
  });
  test('an identical prefix wins over a conflicting one', () => {
    const both: NetNatInfo[] = [...nats, { name: 'devcluster-nat', internalPrefix: '172.31.240.0/24', active: true }];
    assert.deepEqual(natConflict(both, '172.31.240.0/24'), { kind: 'reuse', name: 'devcluster-nat' });
  });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatCidr } from '../../src/host/ipv4.ts';
import {
  mapVmState,
  networkOf,
  parseCapacityMiB,
  parseCreatedInterface,
  parseDhcpServers,
  parseHdds,
  parseHostOnlyIfs,
  parseHostOnlyNets,
  parseMachineReadable,
  parseNetworksConf,
  parseVBoxVersion,
  parseVmList,
  prefixOfMask,
  versionAtLeast,
  versionWarnings,
} from '../../drivers/virtualbox/parse.ts';
import { REPO } from '../helpers/cli.ts';

const fixture = (name: string) => readFileSync(join(REPO, 'test', 'fixtures', 'virtualbox', name), 'utf8');

describe('VBoxManage --version', () => {
  test('the version with its revision or distribution suffix stripped', () => {
    assert.deepEqual(parseVBoxVersion(fixture('version-7.0.14.txt')), { major: 7, minor: 0, patch: 14, text: '7.0.14' });
    assert.deepEqual(parseVBoxVersion(fixture('version-7.1-ubuntu.txt')), { major: 7, minor: 1, patch: 12, text: '7.1.12' });
    assert.equal(parseVBoxVersion('6.1\n')?.text, '6.1.0');
    assert.equal(parseVBoxVersion('5.0.8_MacPortsr103449')?.text, '5.0.8');
  });

  test('WARNING: paragraphs are skipped for the version and returned as warnings', () => {
    const text = fixture('version-6.1-warning.txt');
    assert.equal(parseVBoxVersion(text)?.text, '6.1.26');
    const warnings = versionWarnings(text);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /^WARNING: The character device \/dev\/vboxdrv does not exist\. Please install .* You will not be able to start VMs/);
  });

  test('no version at all (a kernel module that is not loaded) and garbage are undefined', () => {
    assert.equal(parseVBoxVersion(fixture('version-no-version.txt')), undefined);
    assert.match(versionWarnings(fixture('version-no-version.txt'))[0] ?? '', /vboxdrv kernel module is not loaded.*sudo \/sbin\/vboxconfig/);
    for (const bad of ['', '7', 'foo.bar.baz', '7.beta.0']) assert.equal(parseVBoxVersion(bad), undefined, bad);
  });

  test('version comparison', () => {
    const v = parseVBoxVersion('6.1.28r147628')!;
    assert.ok(versionAtLeast(v, 6, 1, 28));
    assert.ok(!versionAtLeast(v, 6, 1, 29));
    assert.ok(versionAtLeast(v, 6, 0));
    assert.ok(!versionAtLeast(v, 7, 0));
  });
});

describe('showvminfo --machinereadable', () => {
  test('plain and quoted keys, unquoted numbers, escapes and multi-line values', () => {
    const m = parseMachineReadable(fixture('showvminfo-hostonly.txt'));
    assert.equal(m.get('memory'), '4096');
    assert.equal(m.get('VMState'), 'running');
    assert.equal(m.get('SATA-0-0'), '/home/jane doe/.devcluster/profiles/dev/disks/disk.vdi');
    assert.equal(m.get('SATA-2-0'), 'none');
    assert.equal(m.get('Forwarding(1)'), 'guest6443,tcp,127.0.0.1,41443,,6443');
    assert.equal(m.get('hostonlyadapter2'), 'vboxnet1');
    assert.equal(m.get('macaddress2'), '080027D4E5F6');
    assert.equal(m.get('description'), 'first line\nsecond line with a "quote"');
    assert.equal(m.get('uart1'), '0x03f8,4');
    assert.equal(m.has('Encryption:     disabled'), false);
  });

  test('a VirtualBox 7 host-only network and an escaped path', () => {
    const m = parseMachineReadable(fixture('showvminfo-hostonlynet.txt'));
    assert.equal(m.get('CfgFile'), '/Users/jane/it\'s "mine"/profiles/mac/virtualbox/devcluster-mac/devcluster-mac.vbox');
    assert.equal(m.get('nic2'), 'hostonlynetwork');
    assert.equal(m.get('hostonly-network2'), 'devcluster-mac');
    assert.equal(mapVmState(m.get('VMState')), 'saved');
  });

  test('CRLF output of VBoxManage.exe', () => {
    const m = parseMachineReadable('name="a"\r\nVMState="poweroff"\r\ncpus=2\r\n');
    assert.equal(m.get('VMState'), 'poweroff');
    assert.equal(m.get('cpus'), '2');
  });

  test('VM states map onto the driver contract', () => {
    const cases: Array<[string | undefined, string]> = [
      ['running', 'running'], ['paused', 'paused'], ['saved', 'saved'], ['aborted-saved', 'saved'], ['poweroff', 'stopped'],
      ['aborted', 'stopped'], ['starting', 'starting'], ['restoring', 'starting'], ['stopping', 'stopping'], ['saving', 'stopping'],
      ['gurumeditation', 'broken'], ['whatever', 'broken'], ['', 'broken'], [undefined, 'broken'],
    ];
    for (const [word, state] of cases) assert.equal(mapVmState(word), state, String(word));
  });
});

describe('host-only listings', () => {
  test('list hostonlyifs: two adapters, keys split at the first colon', () => {
    const ifs = parseHostOnlyIfs(fixture('hostonlyifs-linux.txt'));
    assert.deepEqual(ifs.map((i) => [i.name, i.ip, i.netmask, i.dhcp, i.status]), [
      ['vboxnet0', '192.168.56.1', '255.255.255.0', false, 'Up'],
      ['vboxnet3', '192.168.60.1', '255.255.255.0', true, 'Down'],
    ]);
    assert.equal(ifs[0]?.networkName, 'HostInterfaceNetworking-vboxnet0');
  });

  test('a Windows adapter name with spaces and #, in CRLF output', () => {
    const [a] = parseHostOnlyIfs(fixture('hostonlyifs-windows-crlf.txt'));
    assert.equal(a?.name, 'VirtualBox Host-Only Ethernet Adapter #2');
    assert.equal(a?.networkName, 'HostInterfaceNetworking-VirtualBox Host-Only Ethernet Adapter #2');
    assert.equal(a?.ip, '192.168.59.1');
  });

  test('records without blank lines between them', () => {
    assert.deepEqual(parseHostOnlyIfs(fixture('hostonlyifs-no-blank-lines.txt')).map((i) => i.name), ['vboxnet0', 'vboxnet1']);
  });

  test('list hostonlynets (VirtualBox 7): a blank line inside a record, a name with a space', () => {
    const nets = parseHostOnlyNets(fixture('hostonlynets-7.txt'));
    assert.deepEqual(nets.map((n) => [n.name, n.enabled, n.lowerIp, n.upperIp, n.netmask]), [
      ['devcluster-dev', true, '192.168.58.10', '192.168.58.10', '255.255.255.0'],
      ['lab net', false, '10.20.0.100', '10.20.0.200', '255.255.0.0'],
    ]);
    assert.equal(formatCidr(networkOf(nets[1]?.lowerIp, nets[1]?.netmask)!), '10.20.0.0/16');
  });

  test('list dhcpservers before 6.1 and from 6.1 give the same fields', () => {
    const old = parseDhcpServers(fixture('dhcpservers-6.0.txt'));
    assert.deepEqual(old, [
      { networkName: 'HostInterfaceNetworking-vboxnet0', serverIp: '192.168.56.100', netmask: '255.255.255.0', lowerIp: '192.168.56.101', upperIp: '192.168.56.254', enabled: true },
      { networkName: 'HostInterfaceNetworking-vboxnet2', serverIp: '192.168.62.2', netmask: '255.255.255.0', lowerIp: '192.168.62.100', upperIp: '192.168.62.254', enabled: false },
    ]);
    const current = parseDhcpServers(fixture('dhcpservers-6.1.txt'));
    assert.deepEqual(current[0], { networkName: 'HostInterfaceNetworking-vboxnet0', serverIp: '192.168.56.100', netmask: '255.255.255.0', lowerIp: '192.168.56.101', upperIp: '192.168.56.254', enabled: true });
    assert.equal(current.length, 2, 'the indented option lines start no record');
    assert.equal(current[1]?.serverIp, '10.0.2.3');
  });

  test('hostonlyif create, list vms, showmediuminfo and list hdds', () => {
    assert.equal(parseCreatedInterface("0%...100%\nInterface 'VirtualBox Host-Only Ethernet Adapter #3' was successfully created\n"), 'VirtualBox Host-Only Ethernet Adapter #3');
    assert.equal(parseCreatedInterface('VBoxManage: error: Failed to create the host-only adapter'), undefined);
    assert.deepEqual(parseVmList('"devcluster-dev" {c1f2a3b4-5d6e-4f70-8a9b-0c1d2e3f4a5b}\n"my \\"vm\\"" {00000000-0000-0000-0000-000000000001}\n'), [
      { name: 'devcluster-dev', uuid: 'c1f2a3b4-5d6e-4f70-8a9b-0c1d2e3f4a5b' },
      { name: 'my \\"vm\\"', uuid: '00000000-0000-0000-0000-000000000001' },
    ]);
    assert.equal(parseCapacityMiB('UUID: x\nCapacity:       8192 MBytes\n'), 8192);
    assert.equal(parseCapacityMiB('nothing'), undefined);
    const hdds = parseHdds(fixture('list-hdds.txt'));
    assert.equal(hdds.length, 2);
    assert.deepEqual(hdds[0]?.children, ['0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', '1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e']);
    assert.equal(hdds[0]?.parentUuid, undefined);
    assert.equal(hdds[1]?.parentUuid, hdds[0]?.uuid);
    assert.equal(hdds[1]?.location, '/home/jane doe/.devcluster/profiles/dev/disks/disk.vdi');
    assert.deepEqual(hdds[1]?.inUseBy, ['devcluster-dev (UUID: c1f2a3b4-5d6e-4f70-8a9b-0c1d2e3f4a5b)']);
  });

  test('netmasks: contiguous ones only (VirtualBox on Windows has reported 15.0.0.0)', () => {
    assert.equal(prefixOfMask('255.255.255.0'), 24);
    assert.equal(prefixOfMask('255.255.248.0'), 21);
    assert.equal(prefixOfMask('0.0.0.0'), 0);
    assert.equal(prefixOfMask('255.255.255.255'), 32);
    assert.equal(prefixOfMask('15.0.0.0'), undefined);
    assert.equal(prefixOfMask('255.0.255.0'), undefined);
    assert.equal(networkOf('192.168.99.1', '15.0.0.0'), undefined);
  });

  test('/etc/vbox/networks.conf: IPv4 ranges of lines starting with *', () => {
    assert.deepEqual(parseNetworksConf(fixture('networks-conf.txt')).map(formatCidr), ['10.42.0.0/16', '192.168.56.0/21', '172.30.5.0/28']);
    assert.deepEqual(parseNetworksConf('# only comments\n'), []);
  });
});

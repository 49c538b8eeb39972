import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultFolders, findVBoxManage, programName } from '../../drivers/virtualbox/locate.ts';
import { parseRegQueryValue } from '../../src/host/windows-registry.ts';
import type { LocateHost } from '../../drivers/virtualbox/locate.ts';
import { explainVBoxLog, usedNem } from '../../drivers/virtualbox/vbox-log.ts';
import { addressesOf, allowedRanges, chooseSubnet, occupiedSubnets } from '../../drivers/virtualbox/hostonly-plan.ts';
import { parseHostOnlyIfs, parseDhcpServers, parseHostOnlyNets, parseVBoxVersion } from '../../drivers/virtualbox/parse.ts';
import { createDiffDiskArgs, forwardRule, hostOnlyNicArgs, modifyVmArgs, usesHostOnlyNet } from '../../drivers/virtualbox/commands.ts';
import { firstError } from '../../drivers/virtualbox/vboxmanage.ts';
import { formatCidr, parseCidr } from '../../src/host/ipv4.ts';
import { REPO, tempDir } from '../helpers/cli.ts';

const fixture = (name: string) => readFileSync(join(REPO, 'test', 'fixtures', 'virtualbox', name), 'utf8');
const v = (text: string) => parseVBoxVersion(text)!;

function fakeHost(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, present: readonly string[], registry?: string): LocateHost & { asked: string[] } {
  const asked: string[] = [];
  return {
    env,
    platform,
    asked,
    isProgram: async (p) => {
      asked.push(p);
      return present.includes(p);
    },
    registryInstallDir: async () => registry,
  };
}

describe('locating VBoxManage', () => {
  test('Windows: VBOX_INSTALL_PATH (a ; list), then VBOX_MSI_INSTALL_PATH, then Program Files, then the registry, then PATH', async () => {
    const env = { VBOX_INSTALL_PATH: 'E:\\nothing;E:\\VBox\\', VBOX_MSI_INSTALL_PATH: 'F:\\MSI\\', ProgramFiles: 'C:\\Program Files', Path: 'C:\\Windows' };
    assert.deepEqual(await findVBoxManage(fakeHost('win32', env, ['E:\\VBox\\VBoxManage.exe'])).then((f) => [f?.path, f?.source]), ['E:\\VBox\\VBoxManage.exe', 'VBOX_INSTALL_PATH']);
    assert.deepEqual(await findVBoxManage(fakeHost('win32', env, ['F:\\MSI\\VBoxManage.exe'])).then((f) => [f?.path, f?.source]), ['F:\\MSI\\VBoxManage.exe', 'VBOX_MSI_INSTALL_PATH']);
    assert.deepEqual(await findVBoxManage(fakeHost('win32', env, ['C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe'])).then((f) => f?.source), 'default folder');
    const reg = parseRegQueryValue(fixture('reg-query-installdir.txt'), 'InstallDir');
    assert.equal(reg, 'D:\\Apps\\Oracle\\VirtualBox\\');
    const viaRegistry = await findVBoxManage(fakeHost('win32', env, ['D:\\Apps\\Oracle\\VirtualBox\\VBoxManage.exe'], reg));
    assert.deepEqual([viaRegistry?.path, viaRegistry?.source], ['D:\\Apps\\Oracle\\VirtualBox\\VBoxManage.exe', 'registry InstallDir']);
    const none = fakeHost('win32', env, []);
    assert.equal(await findVBoxManage(none), undefined);
    assert.ok(none.asked.includes('C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe'));
    assert.equal(programName('win32'), 'VBoxManage.exe');
  });

  test('macOS and Linux: the installers\' folders, then PATH (a real file found through VBOX_INSTALL_PATH and through PATH)', async () => {
    assert.deepEqual(defaultFolders({}, 'darwin'), ['/Applications/VirtualBox.app/Contents/MacOS', '/usr/local/bin']);
    assert.ok(defaultFolders({}, 'linux').includes('/usr/lib/virtualbox'));
    const dir = await tempDir('vbox-locate-');
    try {
      mkdirSync(join(dir, 'a b'));
      const program = join(dir, 'a b', 'VBoxManage');
      writeFileSync(program, '#!/bin/sh\n');
      chmodSync(program, 0o755);
      const { isProgram } = await import('../../drivers/virtualbox/locate.ts');
      const real = (env: NodeJS.ProcessEnv): LocateHost => ({ env, platform: 'linux', isProgram: (p) => isProgram(p, 'linux'), registryInstallDir: async () => undefined });
      const byEnv = await findVBoxManage(real({ VBOX_INSTALL_PATH: join(dir, 'a b') }));
      assert.deepEqual([byEnv?.path, byEnv?.source], [program, 'VBOX_INSTALL_PATH']);
      const byPath = await findVBoxManage(real({ PATH: `/nonexistent:${join(dir, 'a b')}` }));
      assert.deepEqual([byPath?.path, byPath?.source], [program, 'PATH']);
      chmodSync(program, 0o644);
      assert.equal(await findVBoxManage(real({ PATH: join(dir, 'a b') })), undefined, 'a file that cannot be run is not VBoxManage');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('VBox.log after a failed start', () => {
  test('VT-x disabled in the firmware, even after the raw-mode fallback line', () => {
    const verdict = explainVBoxLog(fixture('vboxlog-vmx-disabled.txt'));
    assert.equal(verdict?.reason, 'HOST_VTX_DISABLED');
    assert.equal(verdict?.code, 'VERR_VMX_MSR_ALL_VMX_DISABLED');
    assert.match(verdict?.fix ?? '', /firmware/);
  });

  test('Hyper-V\'s API refused (VERR_NEM_*) and NEM detected', () => {
    const text = fixture('vboxlog-nem.txt');
    assert.deepEqual([explainVBoxLog(text)?.reason, explainVBoxLog(text)?.code], ['VBOX_HYPERV_CONFLICT', 'VERR_NEM_VM_CREATE_FAILED']);
    assert.ok(usedNem(text));
    assert.ok(!usedNem(fixture('vboxlog-ok.txt')));
  });

  test('each VERR family, and logs that show no failure', () => {
    const cases: Array<[string, string | undefined]> = [
      ['00:00:00.318604 Power up failed (vrc=VERR_VMX_NO_VMX, rc=NS_ERROR_FAILURE (0X80004005))', 'HOST_VTX_MISSING'],
      ['Power up failed (vrc=VERR_SVM_DISABLED, rc=E_FAIL)', 'HOST_VTX_DISABLED'],
      ['Power up failed (vrc=VERR_SVM_NO_SVM, rc=E_FAIL)', 'HOST_VTX_MISSING'],
      ['HM: the host CPU does NOT support HW virtualization', 'HOST_VTX_MISSING'],
      ['Power up failed (vrc=VERR_VMX_IN_VMX_ROOT_MODE, rc=E_FAIL)', 'VBOX_HYPERV_CONFLICT'],
      ['Failed to open/create the internal network (VERR_INTNET_FLT_IF_NOT_FOUND)', 'VBOX_HOSTONLY_MISSING'],
      ['HM: HMR3Init: VT-x is disabled', 'HOST_VTX_DISABLED'],
      ['HM: HMR3Init: Falling back to raw-mode: VT-x is disabled in the BIOS for all CPU modes', undefined],
      [fixture('vboxlog-ok.txt'), undefined],
      ['', undefined],
    ];
    for (const [text, reason] of cases) assert.equal(explainVBoxLog(text)?.reason, reason, text);
  });

  test('the first error line of VBoxManage, without its prefix and details', () => {
    assert.equal(firstError('VBoxManage.exe: error: VT-x is not available (VERR_VMX_NO_VMX)\nVBoxManage.exe: error: Details: code E_FAIL\n'), 'VT-x is not available (VERR_VMX_NO_VMX)');
  });
});

describe('the host-only subnet', () => {
  const ifs = parseHostOnlyIfs(fixture('hostonlyifs-linux.txt'));
  const nets = parseHostOnlyNets(fixture('hostonlynets-7.txt'));
  const dhcp = parseDhcpServers(fixture('dhcpservers-6.1.txt'));
  const routes = [{ destination: parseCidr('0.0.0.0/0')!, iface: 'eth0' }, { destination: parseCidr('192.168.57.0/24')!, iface: 'wlan0' }];

  test('the first /24 of 192.168.56.0/21 that no adapter, network, DHCP server or route uses', () => {
    const occupied = occupiedSubnets({ ifs, nets, dhcp, routes });
    const choice = chooseSubnet(allowedRanges('linux', v('7.0.14'), undefined), occupied);
    assert.equal(formatCidr(choice.net!), '192.168.59.0/24');
    assert.deepEqual(choice.considered, ['192.168.56.0/24 (host-only adapter vboxnet0)', '192.168.57.0/24 (host route 192.168.57.0/24 via wlan0)', '192.168.58.0/24 (host-only network devcluster-dev)']);
    assert.deepEqual(addressesOf(choice.net!), { subnet: '192.168.59.0/24', netmask: '255.255.255.0', hostIp: '192.168.59.1', dhcpServerIp: '192.168.59.2', guestIp: '192.168.59.10', lowerIp: '192.168.59.100', upperIp: '192.168.59.254' });
  });

  test('a VPN route over all of 192.168.0.0/16 leaves nothing; a default route is not a collision', () => {
    const vpn = [{ destination: parseCidr('192.168.0.0/16')!, iface: 'utun4' }];
    assert.equal(chooseSubnet(undefined, occupiedSubnets({ ifs: [], nets: [], dhcp: [], routes: vpn })).net, undefined);
    assert.equal(formatCidr(chooseSubnet(undefined, occupiedSubnets({ ifs: [], nets: [], dhcp: [], routes: [routes[0]!] })).net!), '192.168.56.0/24');
  });

  test('which hosts restrict the range: Linux and Intel macOS from 6.1.28; not Windows, older versions or macOS with 7', () => {
    assert.deepEqual(allowedRanges('linux', v('6.1.28'), undefined)?.map(formatCidr), ['192.168.56.0/21']);
    assert.equal(allowedRanges('linux', v('6.1.26'), undefined), undefined);
    assert.equal(allowedRanges('win32', v('7.0.14'), undefined), undefined);
    assert.equal(allowedRanges('darwin', v('7.0.14'), undefined), undefined);
    assert.deepEqual(allowedRanges('darwin', v('6.1.50'), [parseCidr('10.42.0.0/16')!])?.map(formatCidr), ['10.42.0.0/16']);
    const choice = chooseSubnet([parseCidr('10.42.0.0/16')!], []);
    assert.equal(formatCidr(choice.net!), '10.42.0.0/24');
  });
});

describe('argument lists', () => {
  const layout = { vm: 'devcluster-x', baseFolder: '/p', cpus: 4, memoryMiB: 8192, macs: ['080027000001', '080027000002'] as const, serialLog: '/p/serial log', forwards: [{ guestPort: 22, hostPort: 40022 }], hostOnly: { kind: 'hostonlyif' as const, name: 'vboxnet0' } };

  test('7.x adds --natlocalhostreachable1; 6.1 does not', () => {
    assert.ok(modifyVmArgs({ platform: 'linux', arch: 'x64', version: v('7.0.0') }, layout).includes('--natlocalhostreachable1'));
    assert.ok(!modifyVmArgs({ platform: 'linux', arch: 'x64', version: v('6.1.50') }, layout).includes('--natlocalhostreachable1'));
  });

  test('Apple silicon: the Arm chipset, UEFI and kebab-case options', () => {
    const args = modifyVmArgs({ platform: 'darwin', arch: 'arm64', version: v('7.1.4') }, { ...layout, hostOnly: { kind: 'hostonlynet', name: 'devcluster-x' } });
    assert.deepEqual(args.slice(2, 8), ['--chipset', 'armv8virtual', '--firmware', 'efi', '--graphicscontroller', 'qemuramfb']);
    assert.ok(args.includes('--rtc-use-utc') && !args.includes('--hwvirtex'));
  });

  test('host-only attachment per host; NAT rules keyed by the guest port; the disk as a differencing child', () => {
    assert.ok(usesHostOnlyNet({ platform: 'darwin', arch: 'x64', version: v('7.0.0') }));
    assert.ok(!usesHostOnlyNet({ platform: 'darwin', arch: 'x64', version: v('6.1.50') }));
    assert.ok(!usesHostOnlyNet({ platform: 'win32', arch: 'x64', version: v('7.1.0') }));
    assert.deepEqual(hostOnlyNicArgs({ kind: 'hostonlynet', name: 'n 1' }, 'AA').slice(0, 4), ['--nic2', 'hostonlynet', '--host-only-net2', 'n 1']);
    assert.equal(forwardRule({ guestPort: 6443, hostPort: 41000 }), 'guest6443,tcp,127.0.0.1,41000,,6443');
    assert.deepEqual(createDiffDiskArgs('/c/base.vmdk', '/p/disk.vdi'), ['createmedium', 'disk', '--filename', '/p/disk.vdi', '--diffparent', '/c/base.vmdk', '--format', 'VDI']);
  });
});

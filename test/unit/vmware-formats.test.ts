import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findVmrun, leaseFilesFor, REGISTRY_LOCATIONS, VMNET_DHCP_PARAMETERS } from '../../drivers/vmware/host.ts';
import { parseRegQueryValue } from '../../src/host/windows-registry.ts';
import type { VmwareHost } from '../../drivers/vmware/host.ts';
import { guestFor, isVmwareStaticMac, randomStaticMac } from '../../drivers/vmware/index.ts';
import { parseNetworking, parseVmnetNatConf } from '../../drivers/vmware/network.ts';
import { deltaDiskBytes, descriptorPathProblem, parseDescriptor, parseSparseHeader } from '../../drivers/vmware/vmdk.ts';
import { escapeVmxValue, parseVmx, renderVmx, unescapeVmxValue, vmxEntries } from '../../drivers/vmware/vmx.ts';
import type { VmxModel } from '../../drivers/vmware/vmx.ts';
import { isProductMissing, isToolsMissing, parseGuestIp, parseVmrunList, parseVmrunVersion, sameVmxPath, vmrunArgs, vmrunError } from '../../drivers/vmware/vmrun.ts';
import { formatCidr } from '../../src/host/ipv4.ts';
import { REPO, tempDir } from '../helpers/cli.ts';
import { fakeExec } from '../helpers/doctor.ts';

const FIXTURES = join(REPO, 'test', 'fixtures', 'vmware');
const fx = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const HOSTILE = [
  'C:\\Users\\Ann Lee\\My "VMs"\\seed.iso',
  '/home/ann/a|b/#not a comment/ünïcödé 名前/seed.iso',
  'tab\there, newline\nthere, bar || and |22 literally',
  '/Volumes/Macintosh HD/Users/ann/.devcluster/profiles/dev/logs/serial.log',
];

const MODEL: VmxModel = {
  displayName: 'devcluster-dev',
  guestOS: 'vmware-photon-64',
  firmware: 'bios',
  virtualHwVersion: 19,
  cpus: 2,
  memoryMiB: 4096,
  mac: '00:50:56:12:34:56',
  disk: 'disk.vmdk',
  cdroms: [HOSTILE[0] as string, HOSTILE[1] as string],
  serialLog: HOSTILE[3] as string,
};

describe('.vmx', () => {
  test('values are escaped with |XX for ", |, # and control characters, and read back exactly', () => {
    assert.equal(escapeVmxValue('a"b|c#d\ne'), 'a|22b|7Cc|23d|0Ae');
    assert.equal(escapeVmxValue('C:\\Program Files (x86)\\ünï'), 'C:\\Program Files (x86)\\ünï', 'backslashes and non-ASCII stay literal');
    for (const s of HOSTILE) assert.equal(unescapeVmxValue(escapeVmxValue(s)), s);
  });

  test('the generated file parses back to the model, hostile paths included', () => {
    const text = renderVmx(vmxEntries(MODEL));
    assert.ok(text.startsWith('.encoding = "UTF-8"\n'), 'the encoding comes first');
    for (const line of text.trimEnd().split('\n')) assert.match(line, /^[A-Za-z0-9._:-]+ = "[^"]*"$/, line);
    const vmx = parseVmx(text);
    assert.equal(vmx.get('guestos'), 'vmware-photon-64');
    assert.equal(vmx.get('firmware'), 'bios');
    assert.equal(vmx.get('numvcpus'), '2');
    assert.equal(vmx.get('memsize'), '4096');
    assert.equal(vmx.get('virtualhw.version'), '19');
    assert.equal(vmx.get('ethernet0.connectiontype'), 'nat');
    assert.equal(vmx.get('ethernet0.addresstype'), 'static');
    assert.equal(vmx.get('ethernet0.address'), '00:50:56:12:34:56');
    assert.equal(vmx.get('scsi0:0.filename'), 'disk.vmdk');
    assert.equal(vmx.get('sata0:0.filename'), HOSTILE[0]);
    assert.equal(vmx.get('sata0:0.devicetype'), 'cdrom-image');
    assert.equal(vmx.get('sata0:1.filename'), HOSTILE[1]);
    assert.equal(vmx.get('sata0:2.present'), undefined);
    assert.equal(vmx.get('serial0.filetype'), 'file');
    assert.equal(vmx.get('serial0.filename'), HOSTILE[3]);
  });

  test('a file VMware wrote: CRLF, mixed-case keys, unquoted values, comments, escapes', () => {
    const vmx = parseVmx(fx('vmware-written.vmx'));
    assert.equal(vmx.get('displayname'), 'Ann\'s "lab" VM | test # 1 ünïcode');
    assert.equal(vmx.get('scsi0:0.filename'), 'C:\\Users\\Ann Lee\\VMs\\lab\\lab-000001.vmdk');
    assert.equal(vmx.get('scsi0:0.virtualssd'), '1');
    assert.equal(vmx.get('ethernet0.addresstype'), 'generated');
    assert.equal(vmx.get('annotation'), 'first line\nsecond line');
    assert.equal(vmx.size, 9);
  });

  test('render refuses keys it could not write and keys given twice in any case', () => {
    assert.throws(() => renderVmx([['bad key', 'x']]), RangeError);
    assert.throws(() => renderVmx([['a.b', '1'], ['A.B', '2']]), RangeError);
  });

  test('static MACs stay in VMware\'s range; the guest type follows the image', () => {
    assert.equal(randomStaticMac(Uint8Array.from([0xff, 0xff, 0xff])), '00:50:56:3f:ff:ff');
    assert.equal(randomStaticMac(Uint8Array.from([0x40, 0x01, 0x02])), '00:50:56:00:01:02');
    for (let i = 0; i < 50; i++) assert.ok(isVmwareStaticMac(randomStaticMac()));
    assert.equal(isVmwareStaticMac('00:50:56:40:00:00'), false);
    assert.equal(isVmwareStaticMac('00:0c:29:00:00:00'), false);
    assert.deepEqual(guestFor('photon-5'), { guestOS: 'vmware-photon-64', firmware: 'bios' });
    assert.deepEqual(guestFor('debian-12'), { guestOS: 'other5xlinux-64', firmware: 'bios' });
    assert.deepEqual(guestFor(undefined), { guestOS: 'other5xlinux-64', firmware: 'bios' });
  });
});

describe('vmrun', () => {
  test('every command names the product and passes each word as its own argument', () => {
    assert.deepEqual(vmrunArgs.start('ws', 'C:\\a b\\x.vmx'), ['-T', 'ws', 'start', 'C:\\a b\\x.vmx', 'nogui']);
    assert.deepEqual(vmrunArgs.stop('fusion', '/v/x.vmx', 'hard'), ['-T', 'fusion', 'stop', '/v/x.vmx', 'hard']);
    assert.deepEqual(vmrunArgs.stop('ws', '/v/x.vmx', 'soft'), ['-T', 'ws', 'stop', '/v/x.vmx', 'soft']);
    assert.deepEqual(vmrunArgs.getGuestIPAddress('ws', '/v/x.vmx'), ['-T', 'ws', 'getGuestIPAddress', '/v/x.vmx', '-wait']);
    assert.deepEqual(vmrunArgs.deleteVM('ws', '/v/x.vmx'), ['-T', 'ws', 'deleteVM', '/v/x.vmx']);
    assert.deepEqual(vmrunArgs.list('ws'), ['-T', 'ws', 'list']);
  });

  test('list output, and paths compared as each OS does', () => {
    const list = parseVmrunList(fx('vmrun-list-windows.txt'));
    assert.equal(list.count, 2);
    assert.deepEqual(list.vmx, ['C:\\Users\\Ann Lee\\.devcluster\\profiles\\dev\\vm\\devcluster-dev.vmx', 'E:\\VMs\\Windows Server 2022\\Windows Server 2022.vmx']);
    assert.deepEqual(parseVmrunList(fx('vmrun-list-empty.txt')), { count: 0, vmx: [] });
    assert.ok(sameVmxPath('c:/users/ann lee/.devcluster/profiles/dev/vm/devcluster-dev.vmx', list.vmx[0] as string, 'win32'));
    assert.ok(sameVmxPath('/Users/Ann/VM.vmx', '/users/ann/vm.vmx', 'darwin'));
    assert.ok(!sameVmxPath('/home/ann/VM.vmx', '/home/ann/vm.vmx', 'linux'));
  });

  test('guest addresses: IPv4 only, never a bridge\'s .1 inside the guest, link-local or loopback', () => {
    assert.equal(parseGuestIp('192.168.79.131\n'), '192.168.79.131');
    assert.equal(parseGuestIp('192.168.79.131\r\n'), '192.168.79.131');
    for (const bad of ['10.244.0.1\n', '169.254.3.4', '127.0.0.1', 'fe80::250:56ff:fe12:3456', '', 'unknown']) assert.equal(parseGuestIp(bad), undefined, bad);
  });

  test('version, errors and the answers that mean Player or no Tools', () => {
    assert.deepEqual(parseVmrunVersion(fx('vmrun-usage.txt')), { version: '1.17.0', build: '24319021' });
    assert.equal(parseVmrunVersion('Usage: vmrun'), undefined);
    assert.equal(vmrunError(fx('vmrun-player.txt'), ''), 'Error: The specified version was not found');
    assert.ok(isProductMissing(fx('vmrun-player.txt')));
    assert.ok(!isProductMissing(fx('vmrun-no-tools.txt')));
    assert.ok(!isProductMissing(vmrunError('Error: Unable to connect to host.\r\nError: The operation is not supported for the specified parameters\r\n', '')), 'Workstation Pro says it too (GNS3 issue 1008)');
    assert.ok(!isProductMissing('Error: Unable to connect to host.'));
    assert.ok(isToolsMissing(fx('vmrun-no-tools.txt')));
    assert.equal(vmrunError('', 'vmrun: something odd\n'), 'vmrun: something odd');
  });
});

describe('finding vmrun', () => {
  async function program(dir: string, name: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    const p = join(dir, name);
    await writeFile(p, '#!/bin/sh\nexit 0\n');
    await chmod(p, 0o755);
    return p;
  }

  test('PATH first, then the install folders; the setting overrides both; every place tried is named', async () => {
    const dir = await tempDir('vmware-find-');
    dirs.push(dir);
    const onPath = await program(join(dir, 'path'), 'vmrun');
    const installed = await program(join(dir, 'opt'), 'vmrun');
    const host = (PATH: string): VmwareHost => ({ platform: 'linux', env: { PATH }, installDirs: [join(dir, 'none'), join(dir, 'opt')], networkConfig: '', leaseFiles: [] });
    const exec = fakeExec({});
    assert.deepEqual(await findVmrun('auto', host(join(dir, 'path')), exec), { found: { path: onPath, source: 'PATH' }, tried: ['PATH'] });
    assert.deepEqual(await findVmrun('auto', host(join(dir, 'empty')), exec), { found: { path: installed, source: 'install folder' }, tried: ['PATH', join(dir, 'none', 'vmrun'), installed] });
    const none = await findVmrun('auto', { ...host(''), installDirs: [] }, exec);
    assert.equal(none.found, undefined);
    assert.deepEqual(none.tried, ['PATH']);
    assert.equal((await findVmrun(installed, host(join(dir, 'path')), exec)).found?.source, 'the vmware-vmrun setting');
    assert.equal((await findVmrun(join(dir, 'missing'), host(join(dir, 'path')), exec)).found, undefined);
    assert.equal(exec.calls.length, 0, 'no registry outside Windows');
  });

  test('Windows: after PATH, each registry key in order with `reg query <key> /v <value>`, then Program Files', async () => {
    const exec = fakeExec({
      reg: (args) => (args[1] === REGISTRY_LOCATIONS[0]?.key ? { stdout: fx('reg-query-installpath.txt') } : { exitCode: 1, stdout: fx('reg-query-missing.txt') }),
    });
    const host: VmwareHost = { platform: 'win32', env: { Path: 'C:\\nowhere' }, installDirs: ['C:\\Program Files (x86)\\VMware\\VMware Workstation'], networkConfig: '', leaseFiles: [] };
    const r = await findVmrun('auto', host, exec);
    // This Linux test machine has no C: drive, so nothing is found; the order and the commands are what is checked.
    assert.equal(r.found, undefined);
    assert.deepEqual(exec.calls.map((c) => [c.command, ...c.args]), REGISTRY_LOCATIONS.map((l) => ['reg', 'query', l.key, '/v', l.value]));
    assert.deepEqual(r.tried, [
      'PATH',
      'registry HKLM\\SOFTWARE\\WOW6432Node\\VMware, Inc.\\VMware Workstation\\InstallPath',
      'C:\\Program Files (x86)\\VMware\\VMware Workstation\\vmrun.exe (named by the registry, missing)',
      'registry HKLM\\SOFTWARE\\VMware, Inc.\\VMware Workstation\\InstallPath',
      'registry HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\App Paths\\vmware.exe\\Path',
      'C:\\Program Files (x86)\\VMware\\VMware Workstation\\vmrun.exe',
    ]);
  });

  test('reg query output: the value after four-space separators, names and data with spaces', () => {
    assert.equal(parseRegQueryValue(fx('reg-query-installpath.txt'), 'InstallPath'), 'C:\\Program Files (x86)\\VMware\\VMware Workstation\\');
    assert.equal(parseRegQueryValue(fx('reg-query-productversion.txt'), 'productversion'), '17.6.2.24409262');
    assert.equal(parseRegQueryValue(fx('reg-query-missing.txt'), 'InstallPath'), undefined);
    assert.equal(parseRegQueryValue('\r\nHKEY_X\r\n    Install Path    REG_EXPAND_SZ    %ProgramFiles%\\VM ware\r\n', 'Install Path'), '%ProgramFiles%\\VM ware');
  });
});

describe('vmnet8 configuration', () => {
  test('networking: vmnet8\'s subnet, NAT and DHCP; vmnet1 is not mistaken for it', () => {
    const n = parseNetworking(fx('networking-linux'), '/etc/vmware/networking');
    assert.equal(formatCidr(n?.subnet ?? { base: 0, prefix: 0 }), '192.168.79.0/24');
    assert.equal(n?.nat, true);
    assert.equal(n?.dhcp, true);
    const hostOnly = parseNetworking(fx('networking-vmnet8-hostonly'), 'x');
    assert.equal(formatCidr(hostOnly?.subnet ?? { base: 0, prefix: 0 }), '10.20.0.0/16');
    assert.equal(hostOnly?.nat, false);
    assert.equal(hostOnly?.dhcp, false);
    assert.equal(parseNetworking(fx('networking-no-vmnet8'), 'x'), undefined);
  });

  test('vmnetnat.conf (CRLF): the [host] gateway with its prefix and the device', () => {
    const n = parseVmnetNatConf(fx('vmnetnat.conf'), 'vmnetnat.conf');
    assert.equal(formatCidr(n?.subnet ?? { base: 0, prefix: 0 }), '192.168.79.0/24');
    assert.equal(n?.nat, true);
    assert.equal(parseVmnetNatConf('[udp]\r\ntimeout = 30\r\n', 'x'), undefined);
    assert.equal(parseVmnetNatConf('[host]\nip = 192.168.5.2/24\ndevice = VMnet2\n', 'x')?.nat, false);
  });

  test('vmnetnat.conf as the installer writes it: ip without a prefix, netmask on its own line', () => {
    const n = parseVmnetNatConf(fx('vmnetnat-netmask.conf'), 'vmnetnat.conf');
    assert.equal(formatCidr(n?.subnet ?? { base: 0, prefix: 0 }), '192.168.174.0/24');
    assert.equal(n?.nat, true);
    // A bare address is not a /32: that would put every guest "outside vmnet8" and no address would ever be taken.
    const bare = parseVmnetNatConf('[host]\r\nip = 192.168.174.2\r\ndevice = vmnet8\r\n', 'x');
    assert.equal(bare?.subnet, undefined);
    assert.equal(bare?.nat, true);
  });
});

describe('VMDK child disks', () => {
  const parentDisk = (capacitySectors: bigint) => ({
    header: { version: 1, flags: 3, capacity: capacitySectors, grainSize: 128n, descriptorOffset: 1n, descriptorSize: 20n, numGTEsPerGT: 512, rgdOffset: 21n, gdOffset: 0n, overHead: 0n, compressAlgorithm: 0 },
    descriptor: parseDescriptor('# Disk DescriptorFile\nversion=1\nCID=0a1b2c3d\nparentCID=ffffffff\ncreateType="monolithicSparse"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = "lsilogic"\nddb.geometry.cylinders = "2610"\nddb.geometry.heads = "255"\nddb.geometry.sectors = "63"\n'),
  });

  test('a 20 GiB child: header fields, empty tables, and a descriptor naming its parent', () => {
    const parent = { path: '/home/ann/.devcluster/cache/images/abc/vmware/base-20480m.vmdk', disk: parentDisk(41943040n) };
    const bytes = deltaDiskBytes({ path: '/x/disk.vmdk', parent, virtualHwVersion: 19 }, '12345678');
    const h = parseSparseHeader(bytes);
    assert.ok(h !== undefined);
    assert.equal(h.capacity, 41943040n);
    assert.equal(h.grainSize, 128n);
    assert.equal(h.flags, 3);
    // 327680 grains / 512 per table = 640 tables of 4 sectors; a 5-sector directory for each copy.
    assert.equal(h.rgdOffset, 21n);
    assert.equal(h.gdOffset, 21n + 5n + 2560n);
    assert.equal(h.overHead, 5248n);
    assert.equal(bytes.length, 5248 * 512);
    const v = new DataView(bytes.buffer);
    assert.equal(v.getUint32(Number(h.gdOffset) * 512, true), Number(h.gdOffset) + 5, 'the first directory entry points past the directory');
    assert.equal(v.getUint32(Number(h.gdOffset) * 512 + 639 * 4, true), Number(h.gdOffset) + 5 + 639 * 4);
    assert.ok(bytes.subarray((Number(h.gdOffset) + 5) * 512).every((b) => b === 0), 'no grain allocated');
    const d = parseDescriptor(Buffer.from(bytes.subarray(512, 21 * 512)).toString('utf8'));
    assert.equal(d.cid, '12345678');
    assert.equal(d.parentCid, '0a1b2c3d');
    assert.equal(d.parentFileNameHint, parent.path);
    assert.equal(d.createType, 'monolithicSparse');
    assert.equal(d.ddb.get('ddb.geometry.cylinders'), '2610');
    assert.match(d.ddb.get('ddb.longContentID') ?? '', /^[0-9a-f]{24}12345678$/);
    assert.match(Buffer.from(bytes.subarray(512, 21 * 512)).toString('utf8'), /\nRW 41943040 SPARSE "disk\.vmdk"\n/);
  });

  test('parent paths a descriptor cannot hold, and files that are not sparse VMDKs', () => {
    assert.equal(descriptorPathProblem('C:\\Users\\Ann Lee\\.devcluster\\ünï|#\\base.vmdk'), undefined);
    assert.match(descriptorPathProblem('/home/a "b"/base.vmdk') ?? '', /double quote/);
    assert.match(descriptorPathProblem('/home/a\nb/base.vmdk') ?? '', /control character/);
    assert.equal(parseSparseHeader(new Uint8Array(512)), undefined);
    assert.equal(parseSparseHeader(Buffer.from('KDMV')), undefined, 'shorter than a sector');
    assert.equal(parseDescriptor('CID=ffffffff\nparentCID=ffffffff\n').parentCid, undefined, 'ffffffff means no parent');
  });
});

describe('lease files', () => {
  test('Windows: the file VMnetDHCP\'s registry names comes first; elsewhere the layout\'s files as they are', async () => {
    const host: VmwareHost = { platform: 'win32', env: {}, installDirs: [], networkConfig: '', leaseFiles: [{ path: 'C:\\ProgramData\\VMware\\vmnetdhcp.leases', format: 'isc' }] };
    const moved = fakeExec({ reg: () => ({ stdout: '\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\services\\VMnetDHCP\\Parameters\r\n    LeaseFile    REG_SZ    D:\\VMware\\vmnetdhcp.leases\r\n' }) });
    assert.deepEqual((await leaseFilesFor(host, moved)).map((l) => l.path), ['D:\\VMware\\vmnetdhcp.leases', 'C:\\ProgramData\\VMware\\vmnetdhcp.leases']);
    assert.deepEqual(moved.calls.map((c) => c.args), [['query', VMNET_DHCP_PARAMETERS, '/v', 'LeaseFile']]);
    const same = fakeExec({ reg: () => ({ stdout: '    LeaseFile    REG_SZ    c:\\programdata\\vmware\\vmnetdhcp.leases\r\n' }) });
    assert.deepEqual((await leaseFilesFor(host, same)).map((l) => l.path), ['C:\\ProgramData\\VMware\\vmnetdhcp.leases']);
    const expand = fakeExec({ reg: () => ({ stdout: '    LeaseFile    REG_EXPAND_SZ    %SystemDrive%\\VMnet\\%Unknown%\\vmnetdhcp.leases\r\n' }) });
    assert.deepEqual((await leaseFilesFor({ ...host, env: { SYSTEMDRIVE: 'E:' } }, expand)).map((l) => l.path), ['E:\\VMnet\\%Unknown%\\vmnetdhcp.leases', 'C:\\ProgramData\\VMware\\vmnetdhcp.leases'], 'expanded from the environment, names in any case');
    const none = fakeExec({ reg: () => ({ exitCode: 1, stdout: fx('reg-query-missing.txt') }) });
    assert.equal((await leaseFilesFor(host, none)).length, 1);
    const linux = fakeExec({});
    assert.deepEqual(await leaseFilesFor({ ...host, platform: 'linux' }, linux), host.leaseFiles);
    assert.equal(linux.calls.length, 0);
  });
});

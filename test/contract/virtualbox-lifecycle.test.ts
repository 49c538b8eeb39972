/**
 * The VirtualBox driver's lifecycle against a scripted VBoxManage
 * (test/fixtures/virtualbox/double/VBoxManage): the exact argument lists of
 * create, start, stop and delete on VirtualBox 6.1 and 7.x for Linux, Windows
 * and macOS hosts; failures injected part-way (an `error:` with exit code 0,
 * "object is not ready", VT-x missing at power-up, an adapter reported as
 * failed yet created, a guest deaf to the power button, a host-only range
 * VirtualBox refuses); hostile paths; and a delete that removes only what
 * devcluster recorded.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriverContext, VmSpec } from '../../drivers/driver.ts';
import { createVirtualBoxDriver, vmName } from '../../drivers/virtualbox/index.ts';
import type { VirtualBoxHost } from '../../drivers/virtualbox/index.ts';
import { parseCidr } from '../../src/host/ipv4.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import { StateStore } from '../../src/profile/state.ts';
import { REPO, tempDir } from '../helpers/cli.ts';
import { rejectsWith } from '../helpers/errors.ts';

const DOUBLE = join(REPO, 'test', 'fixtures', 'virtualbox', 'double', 'VBoxManage');
const PORTS = [{ name: 'ssh', guestPort: 22 }, { name: 'api, server', guestPort: 6443 }];
/** Queries the driver makes between actions; the golden sequences list only what changes VirtualBox. */
const QUERIES = new Set(['--version', 'showvminfo', 'list', 'showmediuminfo']);

interface DoubleState {
  version?: string;
  calls?: string[][];
  vms?: Record<string, { state: string; settings: Record<string, string>; natpf: Record<string, string>; attach: Record<string, string>; [more: string]: unknown }>;
  hdds?: Array<{ location: string; uuid: string; parent?: string }>;
  hostonlyifs?: Array<{ name: string; ip: string; mask: string; guid?: string }>;
  hostonlynets?: Array<{ name: string; lower: string; upper: string; mask: string; guid?: string; enabled?: boolean }>;
  dhcpservers?: Array<{ network: string; ip: string; fixed: Record<string, string> }>;
  [more: string]: unknown;
}

describe('the VirtualBox driver over a scripted VBoxManage', () => {
  let dir: string;
  let stateFile: string;
  let home: string;
  let spec: VmSpec;
  let base: string;
  const host: VirtualBoxHost = {
    locate: async () => ({ path: DOUBLE, source: 'VBOX_INSTALL_PATH', tried: [] }),
    arch: 'x64',
    routes: async () => [{ destination: parseCidr('0.0.0.0/0')!, iface: 'eth0', gateway: '10.0.0.1' }, { destination: parseCidr('192.168.57.0/24')!, iface: 'wlan0' }],
    networksConf: async () => undefined,
    pollMs: 5,
    startTimeoutMs: 1000,
    adapterAppearMs: 300,
    retryDelayMs: 5,
  };
  const driver = createVirtualBoxDriver(host);

  before(async () => {
    // Spaces, quotes and an apostrophe in the home folder: every path is one argv element.
    dir = await tempDir('virtualbox-lifecycle-');
    home = join(dir, `it's a "home" dir`);
    mkdirSync(home, { recursive: true });
    stateFile = join(dir, 'double.json');
    process.env['VBOX_DOUBLE_STATE'] = stateFile;
    base = join(dir, 'cache', 'photon-5.vmdk');
    mkdirSync(join(dir, 'cache'), { recursive: true });
    writeFileSync(base, '# Disk DescriptorFile\n');
    for (const f of ['seed.iso', 'bundle.iso']) writeFileSync(join(dir, f), f);
    spec = { cpus: 2, memoryMiB: 4096, diskMiB: 20480, image: { format: 'vmdk', disk: base, sha256: 'b'.repeat(64) }, seedIso: join(dir, 'seed.iso'), dataIsos: [join(dir, 'bundle.iso')], network: { mode: 'nat-hostonly', guestAddress: { kind: 'dhcp' }, dns: [] } };
  });

  after(() => {
    delete process.env['VBOX_DOUBLE_STATE'];
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function setDouble(s: DoubleState): void {
    writeFileSync(stateFile, JSON.stringify(s));
  }
  function readDouble(): DoubleState {
    return JSON.parse(readFileSync(stateFile, 'utf8')) as DoubleState;
  }
  function changes(): string[][] {
    return (readDouble().calls ?? []).filter((c) => !QUERIES.has(c[0] ?? ''));
  }
  function clearCalls(): void {
    setDouble({ ...readDouble(), calls: [] });
  }

  async function context(name: string, platform: NodeJS.Platform): Promise<DriverContext & { reports: string[] }> {
    const paths = profilePaths(home, name);
    mkdirSync(paths.dir, { recursive: true });
    const state = new StateStore(paths.state);
    await state.init(name, 'virtualbox');
    const reports: string[] = [];
    return { profile: name, home, platform, paths, settings: {}, state, signal: new AbortController().signal, report: (m: string) => reports.push(m), reports };
  }

  beforeEach(() => setDouble({ version: '7.0.14', baseCapacityMiB: 8192 }));

  test('Linux, VirtualBox 7.0: create, start, stop and delete run exactly these commands', async () => {
    const ctx = await context('dev', 'linux');
    const plan = await driver.ensureNetwork(ctx, { ports: PORTS });
    const d = ctx.state.require().driverData['virtualbox'] as { macs: [string, string]; forwards: Record<string, number> };
    const [mac1, mac2] = d.macs;
    assert.match(mac1, /^080027[0-9A-F]{6}$/);
    assert.notEqual(mac1, mac2);
    const ssh = d.forwards['22'] as number;
    const api = d.forwards['6443'] as number;
    assert.deepEqual(plan.forwards, { 22: { host: '127.0.0.1', port: ssh }, 6443: { host: '127.0.0.1', port: api } });
    // 192.168.56.0/24 is free but vboxnet0's default lives there on many hosts; the first /24 no route or adapter uses is taken.
    assert.equal(plan.subnet, '192.168.56.0/24');
    assert.deepEqual(plan.guestAddress, { kind: 'dhcp' });
    await driver.create(ctx, spec);
    const vmDir = join(ctx.paths.dir, 'virtualbox');
    const disk = join(ctx.paths.disks, 'disk.vdi');
    assert.deepEqual(changes(), [
      ['hostonlyif', 'create'],
      ['hostonlyif', 'ipconfig', 'vboxnet0', '--ip', '192.168.56.1', '--netmask', '255.255.255.0'],
      ['dhcpserver', 'add', '--network', 'HostInterfaceNetworking-vboxnet0', '--server-ip', '192.168.56.2', '--netmask', '255.255.255.0', '--lower-ip', '192.168.56.100', '--upper-ip', '192.168.56.254', '--enable'],
      ['dhcpserver', 'modify', '--network', 'HostInterfaceNetworking-vboxnet0', '--mac-address', mac2.toLowerCase().match(/../g)!.join(':'), '--fixed-address', '192.168.56.10'],
      ['createvm', '--name', 'devcluster-dev', '--basefolder', vmDir, '--ostype', 'Linux_64', '--register'],
      ['modifyvm', 'devcluster-dev', '--firmware', 'bios', '--cpus', '2', '--memory', '4096', '--acpi', 'on', '--ioapic', 'on', '--rtcuseutc', 'on', '--paravirtprovider', 'kvm', '--hwvirtex', 'on', '--nestedpaging', 'on', '--pae', 'on', '--largepages', 'on', '--vtxvpid', 'on', '--biosbootmenu', 'disabled',
        '--boot1', 'disk', '--boot2', 'dvd', '--boot3', 'none', '--boot4', 'none',
        '--uart1', '0x3F8', '4', '--uartmode1', 'file', ctx.paths.serialLog,
        '--nic1', 'nat', '--nictype1', 'virtio', '--cableconnected1', 'on', '--macaddress1', mac1, '--natdnshostresolver1', 'on', '--natlocalhostreachable1', 'on',
        '--natpf1', `guest22,tcp,127.0.0.1,${ssh},,22`, '--natpf1', `guest6443,tcp,127.0.0.1,${api},,6443`,
        '--nic2', 'hostonly', '--hostonlyadapter2', 'vboxnet0', '--nictype2', 'virtio', '--cableconnected2', 'on', '--macaddress2', mac2, '--nicpromisc2', 'deny'],
      ['storagectl', 'devcluster-dev', '--name', 'SATA', '--add', 'sata', '--controller', 'IntelAhci', '--portcount', '3', '--hostiocache', 'on', '--bootable', 'on'],
      ['createmedium', 'disk', '--filename', disk, '--diffparent', base, '--format', 'VDI'],
      ['modifymedium', 'disk', disk, '--resize', '20480'],
      ['storageattach', 'devcluster-dev', '--storagectl', 'SATA', '--port', '0', '--device', '0', '--type', 'hdd', '--medium', disk],
      ['storageattach', 'devcluster-dev', '--storagectl', 'SATA', '--port', '1', '--device', '0', '--type', 'dvddrive', '--medium', spec.seedIso],
      ['storageattach', 'devcluster-dev', '--storagectl', 'SATA', '--port', '2', '--device', '0', '--type', 'dvddrive', '--medium', join(dir, 'bundle.iso')],
    ]);
    // create is idempotent: a complete VM is left alone.
    clearCalls();
    await driver.create(ctx, spec);
    assert.deepEqual(changes(), []);

    await driver.start(ctx);
    assert.deepEqual(changes(), [['startvm', 'devcluster-dev', '--type', 'headless']]);
    assert.equal(await driver.state(ctx), 'running');
    await driver.start(ctx);
    assert.deepEqual(changes(), [['startvm', 'devcluster-dev', '--type', 'headless']], 'a running VM is not started twice');
    assert.deepEqual(await driver.address(ctx, { deadline: Date.now() + 1000 }), { ip: '192.168.56.10', forwards: plan.forwards, source: 'static' });
    const details = await driver.details(ctx);
    assert.equal(details.acceleration?.accelerator, 'vt-x/amd-v');

    clearCalls();
    await driver.stop(ctx, { timeoutMs: 1000 });
    assert.deepEqual(changes(), [['controlvm', 'devcluster-dev', 'acpipowerbutton']]);
    assert.equal(await driver.state(ctx), 'stopped');

    clearCalls();
    await driver.delete(ctx);
    assert.deepEqual(changes(), [
      ['storageattach', 'devcluster-dev', '--storagectl', 'SATA', '--port', '0', '--device', '0', '--medium', 'none'],
      ['unregistervm', 'devcluster-dev', '--delete'],
      ['closemedium', 'disk', disk, '--delete'],
      ['dhcpserver', 'remove', '--network', 'HostInterfaceNetworking-vboxnet0'],
      ['hostonlyif', 'remove', 'vboxnet0'],
    ]);
    const after = readDouble();
    assert.deepEqual(after.vms, {});
    assert.deepEqual(after.hostonlyifs, []);
    assert.deepEqual(after.dhcpservers, []);
    assert.ok(existsSync(base), 'the cached base image survives the delete');
    assert.ok(!existsSync(disk) && !existsSync(join(ctx.paths.dir, 'virtualbox')));
    assert.deepEqual(ctx.state.require().resources, []);
    assert.equal(await driver.state(ctx), 'absent');
    // The base stays registered (other profiles may be its children) until the image cache releases it.
    assert.equal(await driver.baseMedia!.inUse(ctx, base), true);
    await driver.baseMedia!.release(ctx, base);
    assert.equal(await driver.baseMedia!.inUse(ctx, base), false);
  });

  test('VirtualBox 6.1 on Linux: no --natlocalhostreachable1, no hostonlynets, and a subnet clear of an existing adapter and route', async () => {
    setDouble({ version: '6.1.50', baseCapacityMiB: 8192, nextAdapter: 1, hostonlyifs: [{ name: 'vboxnet0', guid: 'x', ip: '192.168.56.1', mask: '255.255.255.0' }] });
    const ctx = await context('old', 'linux');
    const plan = await driver.ensureNetwork(ctx, { ports: PORTS });
    // .56 is vboxnet0's, .57 is routed over wlan0.
    assert.equal(plan.subnet, '192.168.58.0/24');
    await driver.create(ctx, spec);
    const calls = readDouble().calls ?? [];
    assert.ok(!calls.some((c) => c[0] === 'list' && c[1] === 'hostonlynets'));
    const modify = calls.find((c) => c[0] === 'modifyvm') ?? [];
    assert.ok(!modify.includes('--natlocalhostreachable1'));
    assert.ok(modify.includes('vboxnet1'));
    await driver.delete(ctx);
    assert.deepEqual(readDouble().hostonlyifs?.map((i) => i.name), ['vboxnet0'], 'an adapter devcluster did not create is never removed');
  });

  test('Windows: the adapter name with spaces and # stays one argument; VirtualBox reports a failed create yet makes the adapter', async () => {
    setDouble({ version: '7.1.4', baseCapacityMiB: 8192, adapterStyle: 'windows', nextAdapter: 1, createIfReportsError: true });
    const ctx = await context('win', 'win32');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    assert.ok(ctx.reports.some((r) => /permission to create a network adapter/.test(r)));
    await driver.create(ctx, spec);
    const name = 'VirtualBox Host-Only Ethernet Adapter #2';
    const calls = changes();
    assert.deepEqual(calls[1], ['hostonlyif', 'ipconfig', name, '--ip', '192.168.56.1', '--netmask', '255.255.255.0']);
    assert.equal(calls[2]?.[3], `HostInterfaceNetworking-${name}`);
    assert.ok(calls.find((c) => c[0] === 'modifyvm')?.includes(name));
    await driver.delete(ctx);
    assert.deepEqual(changes().slice(-1), [['hostonlyif', 'remove', name]]);
  });

  test('macOS with VirtualBox 7: a vmnet host-only network, the host at its lower address, the guest\'s address from bootpd\'s lease', async () => {
    const ctx = await context('mac', 'darwin');
    const plan = await driver.ensureNetwork(ctx, { ports: PORTS });
    await driver.create(ctx, spec);
    const calls = changes();
    // vmnet makes the lower address the host's (the gateway) and leases the rest.
    assert.deepEqual(calls[0], ['hostonlynet', 'add', '--name', 'devcluster-mac-192.168.56.0-24', '--netmask', '255.255.255.0', '--lower-ip', '192.168.56.1', '--upper-ip', '192.168.56.254', '--enable']);
    const modify = calls.find((c) => c[0] === 'modifyvm') ?? [];
    assert.deepEqual(modify.slice(modify.indexOf('--nic2'), modify.indexOf('--nic2') + 4), ['--nic2', 'hostonlynet', '--host-only-net2', 'devcluster-mac-192.168.56.0-24']);
    assert.ok(!calls.some((c) => c[0] === 'hostonlyif' || c[0] === 'dhcpserver'));
    // The guest's address is bootpd's lease for NIC2's MAC, inside the subnet; an older lease elsewhere is not it.
    const mac2 = (ctx.state.require().driverData['virtualbox'] as { macs: [string, string] }).macs[1];
    const bootpdMac = mac2.match(/../g)!.map((o) => Number.parseInt(o, 16).toString(16)).join(':');
    const leases = join(dir, 'dhcpd_leases');
    const expires = (Math.floor(Date.now() / 1000) + 3600).toString(16);
    writeFileSync(leases, `{\n\tname=old\n\tip_address=192.168.64.3\n\thw_address=1,${bootpdMac}\n\tlease=0x${expires}\n}\n`);
    const leaseDriver = createVirtualBoxDriver({ ...host, leasesPath: leases });
    const none = await leaseDriver.address(ctx, { deadline: Date.now() + 20 });
    assert.deepEqual(none, { forwards: plan.forwards, source: 'port-forward' }, 'no lease in the subnet: reached through the forwards');
    assert.ok(ctx.reports.some((r) => /no DHCP lease for the host-only NIC/.test(r)));
    writeFileSync(leases, `{\n\tname=devcluster\n\tip_address=192.168.56.2\n\thw_address=1,${bootpdMac}\n\tlease=0x${expires}\n}\n`, { flag: 'a' });
    assert.deepEqual(await leaseDriver.address(ctx, { deadline: Date.now() + 1000 }), { ip: '192.168.56.2', forwards: plan.forwards, source: 'dhcp-leases' });
    assert.equal(plan.gateway, '192.168.56.1');
    await driver.delete(ctx);
    assert.deepEqual(changes().slice(-1), [['hostonlynet', 'remove', '--name', 'devcluster-mac-192.168.56.0-24']]);
  });

  test('macOS with VirtualBox 7: a host-only network of the same name left by another DEVCLUSTER_HOME is neither adopted nor removed', async () => {
    // Another home's profile "mac" made this network; this home's profile of the same name must get its own.
    setDouble({ version: '7.0.14', baseCapacityMiB: 8192, hostonlynets: [{ name: 'devcluster-mac-192.168.56.0-24', guid: 'g', enabled: true, mask: '255.255.255.0', lower: '192.168.56.10', upper: '192.168.56.10' }] });
    const ctx = await context('mac', 'darwin');
    const plan = await driver.ensureNetwork(ctx, { ports: PORTS });
    assert.equal(plan.subnet, '192.168.58.0/24', '192.168.56.0/24 is the other network\'s, 192.168.57.0/24 a route\'s');
    await driver.delete(ctx);
    assert.deepEqual(readDouble().hostonlynets?.map((n) => n.name), ['devcluster-mac-192.168.56.0-24']);
  });

  test('VirtualBox 7 on Linux whose VBoxManage has no `list hostonlynets` (a build without vmnet) still makes its adapter', async () => {
    setDouble({ version: '7.1.12', baseCapacityMiB: 8192, noHostOnlyNets: true });
    const ctx = await context('novmnet', 'linux');
    const plan = await driver.ensureNetwork(ctx, { ports: PORTS });
    assert.equal(plan.subnet, '192.168.56.0/24');
    assert.deepEqual(changes()[0], ['hostonlyif', 'create']);
    await driver.delete(ctx);
    assert.deepEqual(readDouble().hostonlyifs, []);
  });

  test('macOS with VirtualBox 6.1 (Intel) keeps the legacy host-only adapter', async () => {
    setDouble({ version: '6.1.50', baseCapacityMiB: 8192 });
    const ctx = await context('mac61', 'darwin');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    assert.deepEqual(changes()[0], ['hostonlyif', 'create']);
    await driver.delete(ctx);
  });

  test('an `error:` with exit code 0 fails create part-way; the next create removes the half-made VM and finishes', async () => {
    setDouble({ version: '7.0.14', baseCapacityMiB: 8192, fail: [{ prefix: 'storagectl', message: 'Could not add a controller (VERR_INTERNAL_ERROR)', exitZero: true, times: 1 }] });
    const ctx = await context('half', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    const e = await rejectsWith(driver.create(ctx, spec), 'VBOX_COMMAND_FAILED');
    assert.match(e.message, /storagectl devcluster-half failed: Could not add a controller/);
    await assert.rejects(driver.start(ctx), /start before create/, 'a half-made VM is never started');
    await driver.create(ctx, spec);
    const d = readDouble();
    assert.equal(d.vms?.['devcluster-half']?.attach['SATA-0-0'], join(ctx.paths.disks, 'disk.vdi'));
    assert.ok(changes().some((c) => c[0] === 'unregistervm'), 'the half-made VM was removed first');
    await driver.delete(ctx);
  });

  test('"The object is not ready" is tried again, a bounded number of times', async () => {
    setDouble({ version: '7.0.14', baseCapacityMiB: 8192, notReady: { startvm: 2 } });
    const ctx = await context('busy', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    await driver.create(ctx, spec);
    await driver.start(ctx);
    assert.equal(await driver.state(ctx), 'running');
    assert.equal((readDouble().calls ?? []).filter((c) => c[0] === 'startvm').length, 3);
    setDouble({ ...readDouble(), notReady: { 'controlvm devcluster-busy poweroff': 50 } });
    await rejectsWith(driver.kill(ctx), 'VBOX_STOP_TIMEOUT');
    assert.equal((readDouble().calls ?? []).filter((c) => c[0] === 'controlvm').length, 5, 'five attempts, then the failure');
    setDouble({ ...readDouble(), notReady: {} });
    await driver.delete(ctx);
  });

  test('startvm is judged by the VM\'s state: exit 1 after a real start is a success; VERR_VMX_NO_VMX is explained from VBox.log', async () => {
    setDouble({ version: '7.0.14', baseCapacityMiB: 8192, startExitsOne: true });
    const ctx = await context('vtx', 'win32');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    await driver.create(ctx, spec);
    await driver.start(ctx);
    assert.equal(await driver.state(ctx), 'running');
    await driver.kill(ctx);
    setDouble({ ...readDouble(), startExitsOne: false, startFailure: 'VERR_VMX_NO_VMX' });
    const e = await rejectsWith(driver.start(ctx), 'VBOX_START_FAILED');
    assert.match(e.message, /no hardware virtualization.*VERR_VMX_NO_VMX/);
    assert.equal(e.details['reason'], 'HOST_VTX_MISSING');
    const report = await driver.crashReport(ctx);
    assert.match(report.cause, /VERR_VMX_NO_VMX/);
    assert.match(report.log ?? '', /Power up failed/);
    setDouble({ ...readDouble(), startFailure: 'VERR_NEM_VM_CREATE_FAILED' });
    assert.equal((await rejectsWith(driver.start(ctx), 'VBOX_START_FAILED')).details['reason'], 'VBOX_HYPERV_CONFLICT');
    await driver.delete(ctx);
  });

  test('a guest deaf to the power button is powered off when the timeout runs out; a paused one is resumed first', async () => {
    setDouble({ version: '7.0.14', baseCapacityMiB: 8192, acpiIgnored: true });
    const ctx = await context('deaf', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    await driver.create(ctx, spec);
    await driver.start(ctx);
    const s = readDouble();
    s.vms!['devcluster-deaf']!.state = 'paused';
    setDouble({ ...s, calls: [] });
    assert.equal(await driver.state(ctx), 'paused');
    await driver.stop(ctx, { timeoutMs: 50 });
    assert.deepEqual(changes(), [['controlvm', 'devcluster-deaf', 'resume'], ['controlvm', 'devcluster-deaf', 'acpipowerbutton'], ['controlvm', 'devcluster-deaf', 'poweroff']]);
    assert.ok(ctx.reports.some((r) => /did not power off/.test(r)));
    assert.equal(await driver.state(ctx), 'stopped');
    await driver.delete(ctx);
  });

  test('a host-only range VirtualBox refuses (E_ACCESSDENIED) fails with the reason, and the next start does not leak the adapter', async () => {
    setDouble({ version: '7.0.14', baseCapacityMiB: 8192, allowedHostOnly: '10.0.0.0/8' });
    const ctx = await context('range', 'linux');
    const e = await rejectsWith(driver.ensureNetwork(ctx, { ports: PORTS }), 'VBOX_COMMAND_FAILED');
    assert.match(String(e.details['stderrTail']), /E_ACCESSDENIED/);
    // The adapter was recorded with its name before ipconfig: delete removes it.
    assert.equal(ctx.state.require().resources.find((r) => r.kind === 'virtualbox-hostonlyif')?.details?.['name'], 'vboxnet0');
    await driver.delete(ctx);
    assert.deepEqual(readDouble().hostonlyifs, []);
  });

  test('networks.conf narrows the choice; no free subnet is a clear error that changes nothing', async () => {
    const narrow = createVirtualBoxDriver({ ...host, networksConf: async () => '# only one\n* 192.168.57.0/24\n' });
    const ctx = await context('full', 'linux');
    const e = await rejectsWith(narrow.ensureNetwork(ctx, { ports: PORTS }), 'VBOX_HOSTONLY_FAILED');
    assert.match(e.message, /192\.168\.57\.0\/24 \(host route 192\.168\.57\.0\/24 via wlan0\)/);
    assert.match(e.advice ?? '', /networks\.conf/);
    assert.deepEqual(changes(), []);
  });

  test('a recorded VM replaced by another of the same name (settings elsewhere) is kept by create and delete', async () => {
    const ctx = await context('replaced', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    await driver.create(ctx, spec);
    // The user removed devcluster's VM in the VirtualBox Manager and made their own under the same name.
    const s = readDouble();
    s.vms = { [vmName('replaced')]: { uuid: 'mine', dir: join(dir, 'users-vms'), state: 'poweroff', settings: {}, natpf: {}, attach: {}, controllers: [] } };
    setDouble({ ...s, calls: [] });
    await rejectsWith(driver.create(ctx, spec), 'VBOX_VM_NAME_TAKEN');
    await driver.delete(ctx);
    assert.equal(readDouble().vms?.[vmName('replaced')]?.['uuid'], 'mine', 'the user\'s VM is still registered');
    assert.ok(!changes().some((c) => c[0] === 'unregistervm' || c[0] === 'controlvm'));
    assert.ok(ctx.reports.some((r) => /kept the VirtualBox VM/.test(r)));
  });

  test('delete keeps an adapter that took the recorded adapter\'s name after it was removed (another GUID)', async () => {
    const ctx = await context('reused', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    const recorded = ctx.state.require().resources.find((r) => r.kind === 'virtualbox-hostonlyif');
    assert.equal(typeof recorded?.details?.['guid'], 'string', 'the adapter\'s GUID is recorded with its name');
    // vboxnet0 was removed by hand and VirtualBox made a new vboxnet0 for someone else.
    const s = readDouble();
    s.hostonlyifs = [{ name: 'vboxnet0', ip: '192.168.56.1', mask: '255.255.255.0', guid: 'another-adapter' }];
    setDouble({ ...s, calls: [] });
    await driver.ensureNetwork(ctx, { ports: PORTS });
    assert.ok(!changes().some((c) => c[0] === 'hostonlyif' && c[1] === 'ipconfig' && c[2] === 'vboxnet0'), 'the other adapter\'s address is not changed');
    await driver.delete(ctx);
    assert.ok(readDouble().hostonlyifs?.some((i) => i.guid === 'another-adapter'), 'the other adapter is not removed');
    assert.ok(ctx.reports.some((r) => /kept host-only adapter vboxnet0/.test(r)));
  });

  test('a VM with a saved state is deleted: its state is discarded before the disk is detached', async () => {
    const ctx = await context('saved', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    await driver.create(ctx, spec);
    const s = readDouble();
    s.vms![vmName('saved')]!.state = 'saved';
    setDouble({ ...s, calls: [] });
    await driver.delete(ctx);
    assert.deepEqual(changes().slice(0, 3), [
      ['discardstate', 'devcluster-saved'],
      ['storageattach', 'devcluster-saved', '--storagectl', 'SATA', '--port', '0', '--device', '0', '--medium', 'none'],
      ['unregistervm', 'devcluster-saved', '--delete'],
    ]);
    assert.deepEqual(readDouble().vms, {});
    assert.ok(existsSync(base), 'the cached base image is kept');
  });

  test('a VM of the same name that devcluster did not create is refused, not reused or removed', async () => {
    setDouble({ version: '7.0.14', baseCapacityMiB: 8192, vms: { [vmName('taken')]: { uuid: 'u', dir: join(dir, 'elsewhere'), state: 'poweroff', settings: {}, natpf: {}, attach: {}, controllers: [] } } });
    const ctx = await context('taken', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    await rejectsWith(driver.create(ctx, spec), 'VBOX_VM_NAME_TAKEN');
    await driver.delete(ctx);
    assert.ok(readDouble().vms?.[vmName('taken')] !== undefined, 'the other VM is still registered');
  });

  test('two profiles get their own subnet, MACs and ports; deleting one leaves the other\'s network', async () => {
    const a = await context('one', 'linux');
    const b = await context('two', 'linux');
    const pa = await driver.ensureNetwork(a, { ports: PORTS });
    const pb = await driver.ensureNetwork(b, { ports: PORTS });
    assert.notEqual(pa.subnet, pb.subnet);
    assert.notEqual(pa.forwards?.[22]?.port, pb.forwards?.[22]?.port);
    await driver.create(a, spec);
    await driver.create(b, spec);
    await driver.delete(a);
    assert.deepEqual(readDouble().hostonlyifs?.map((i) => i.name), ['vboxnet1']);
    assert.equal(Object.keys(readDouble().vms ?? {}).join(), 'devcluster-two');
    await driver.delete(b);
    assert.deepEqual(readDouble().hostonlyifs, []);
  });

  test('an image in another format, or a disk smaller than the image, is refused before anything is made', async () => {
    const ctx = await context('qcow', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    clearCalls();
    await rejectsWith(driver.create(ctx, { ...spec, image: { ...spec.image, format: 'qcow2' } }), 'VBOX_IMAGE_UNSUITABLE');
    await rejectsWith(driver.create(ctx, { ...spec, diskMiB: 1024 }), 'VBOX_DISK_TOO_SMALL');
    assert.deepEqual(changes(), []);
    await driver.delete(ctx);
  });

  test('an adapter that lost its address gets it again; one removed by hand is made again and the VM re-attached', async () => {
    const ctx = await context('heal', 'linux');
    await driver.ensureNetwork(ctx, { ports: PORTS });
    await driver.create(ctx, spec);
    let s = readDouble();
    s.hostonlyifs![0]!.ip = '192.168.56.77';
    setDouble({ ...s, calls: [] });
    await driver.ensureNetwork(ctx, { ports: PORTS });
    assert.deepEqual(changes(), [['hostonlyif', 'ipconfig', 'vboxnet0', '--ip', '192.168.56.1', '--netmask', '255.255.255.0']]);
    assert.ok(ctx.reports.some((r) => /lost its address/.test(r)));
    s = readDouble();
    setDouble({ ...s, hostonlyifs: [], dhcpservers: [], calls: [] });
    const plan = await driver.ensureNetwork(ctx, { ports: PORTS });
    assert.equal(plan.subnet, '192.168.56.0/24');
    await driver.start(ctx);
    const mac2 = (ctx.state.require().driverData['virtualbox'] as { macs: [string, string] }).macs[1];
    assert.deepEqual(changes().filter((c) => c[0] === 'modifyvm' || c[0] === 'startvm'), [
      ['modifyvm', 'devcluster-heal', '--nic2', 'hostonly', '--hostonlyadapter2', 'vboxnet1', '--nictype2', 'virtio', '--cableconnected2', 'on', '--macaddress2', mac2, '--nicpromisc2', 'deny'],
      ['startvm', 'devcluster-heal', '--type', 'headless'],
    ]);
    await driver.delete(ctx);
    assert.deepEqual(readDouble().hostonlyifs, []);
  });

  test('a delete after the state was lost removes the VM whose settings are in the profile, and leaves what it cannot prove', async () => {
    const first = await context('lost', 'linux');
    await driver.ensureNetwork(first, { ports: PORTS });
    await driver.create(first, spec);
    // A new, empty state for the same profile, as `delete` gets when state.json was damaged.
    const again = await context('lost', 'linux');
    assert.deepEqual(again.state.require().resources, []);
    await driver.delete(again);
    assert.deepEqual(readDouble().vms, {});
    assert.ok(!existsSync(join(again.paths.disks, 'disk.vdi')));
    assert.deepEqual(readDouble().hostonlyifs?.map((i) => i.name), ['vboxnet0'], 'an adapter no state records is not removed');
  });
});

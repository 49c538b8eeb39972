/**
 * The Hyper-V driver's whole lifecycle on Linux, against a scripted double
 * of powershell.exe (test/fixtures/hyperv-double): the real runner spawns it
 * with -EncodedCommand (or -File for a long script), the double recognises
 * each script by its `# devcluster-op:` header and the literals in it, keeps
 * Hyper-V's state in a JSON file, and fails on demand part-way. What is
 * checked is what a Windows host would be left with: VMs, disks, switches,
 * host addresses, NetNats, ICS sharing, and devcluster's own records.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Driver, DriverContext, VmSpec } from '../../drivers/driver.ts';
import { createHypervDriver } from '../../drivers/hyperv/index.ts';
import { hypervRegistryPath } from '../../drivers/hyperv/network.ts';
import { DEFAULT_SWITCH_ID } from '../../drivers/hyperv/output.ts';
import type { DoubleState } from '../fixtures/hyperv-double/double.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import { StateStore } from '../../src/profile/state.ts';
import { REPO, runCli, snapshotTree, tempDir } from '../helpers/cli.ts';
import { rejectsWith as rejectsWithId } from '../helpers/errors.ts';
import type { DevclusterError } from '../../src/ui/errors.ts';

/** A DevclusterError with this id whose message (or advice) says `says`. */
async function rejectsWith(promise: Promise<unknown>, id: string, says: RegExp): Promise<DevclusterError> {
  const e = await rejectsWithId(promise, id);
  assert.match(`${e.message}\n${e.advice ?? ''}`, says);
  return e;
}

const POWERSHELL = join(REPO, 'test', 'fixtures', 'hyperv-double', 'powershell.exe');

function freshHost(): DoubleState {
  return {
    rights: { administrator: true, hypervAdministrators: false },
    module: true,
    vmms: 'Running',
    vms: [],
    vhds: {},
    switches: [{ id: DEFAULT_SWITCH_ID, name: 'Standardväxel', type: 1, notes: '' }],
    hostAdapters: [],
    netNats: [],
    routes: [
      { destinationPrefix: '0.0.0.0/0', nextHop: '192.168.1.1', interfaceAlias: 'Wi-Fi', interfaceIndex: 18, metric: 25 },
      { destinationPrefix: '192.168.1.0/24', nextHop: '0.0.0.0', interfaceAlias: 'Wi-Fi', interfaceIndex: 18 },
    ],
    physicalAdapters: [
      { name: 'Wi-Fi', description: 'Marvell AVASTAR Wireless-AC Network Controller', guid: '{4A0F3B2C-1D2E-4F50-8A9B-0C1D2E3F4A5B}', ifIndex: 18, status: 'Up' },
      { name: 'Ethernet', description: 'Intel(R) Ethernet Connection (7) I219-LM', guid: '{7C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E5F}', ifIndex: 12, status: 'Up' },
    ],
    ics: [],
    neighbors: [],
    guestAddresses: [],
    guestIgnoresShutdown: false,
    fail: [],
    calls: [],
  };
}

describe('the Hyper-V driver over a scripted PowerShell double', () => {
  let dir: string;
  let home: string;
  let statePath: string;
  let spec: VmSpec;
  const driver: Driver = createHypervDriver({ platform: 'win32', powershell: POWERSHELL, pollMs: 5, logSerial: false, fileRetryMs: 200 });

  before(async () => {
    dir = await tempDir('hyperv-lifecycle-');
    statePath = join(dir, 'hyperv-double.json');
    process.env['HYPERV_DOUBLE_STATE'] = statePath;
    writeFileSync(join(dir, 'base.vhdx'), 'base');
    for (const f of ['seed.iso', 'bundle.iso']) writeFileSync(join(dir, f), f);
    spec = {
      cpus: 2,
      memoryMiB: 4096,
      diskMiB: 20480,
      image: { format: 'vhdx', disk: join(dir, 'base.vhdx'), sha256: 'a'.repeat(64) },
      seedIso: join(dir, 'seed.iso'),
      dataIsos: [join(dir, 'bundle.iso')],
      network: { mode: 'winnat', guestAddress: { kind: 'dhcp' }, dns: [] },
    };
  });

  after(() => {
    delete process.env['HYPERV_DOUBLE_STATE'];
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** A new Windows host (the double's state) and a new DEVCLUSTER_HOME. */
  function host(change: (s: DoubleState) => void = () => undefined): void {
    const s = freshHost();
    change(s);
    writeFileSync(statePath, JSON.stringify(s));
    home = join(dir, `home-${Math.random().toString(36).slice(2)}`);
  }

  function windows(): DoubleState {
    return JSON.parse(readFileSync(statePath, 'utf8')) as DoubleState;
  }

  function setWindows(change: (s: DoubleState) => void): void {
    const s = windows();
    change(s);
    writeFileSync(statePath, JSON.stringify(s));
  }

  async function context(name: string, settings: Record<string, unknown> = {}): Promise<DriverContext & { reports: string[] }> {
    const paths = profilePaths(home, name);
    mkdirSync(paths.dir, { recursive: true });
    const state = new StateStore(paths.state);
    await state.init(name, 'hyperv');
    const reports: string[] = [];
    return { profile: name, home, platform: 'win32' as const, paths, settings: { 'hyperv-nat': 'winnat', 'hyperv-nat-subnet': 'auto', 'hyperv-virtual-switch': '', 'hyperv-external-adapter': '', ...settings }, state, signal: new AbortController().signal, report: (m: string) => reports.push(m), reports };
  }

  test('available: Windows only, the Hyper-V module and vmms, and the exact right each mode needs', async () => {
    host();
    const ctx = await context('avail');
    const linux = await driver.available({ ...ctx, platform: 'linux' });
    assert.equal(linux.status, 'unavailable');
    assert.match(linux.status === 'unavailable' ? linux.reason : '', /only on Windows/);
    assert.deepEqual(await driver.available(ctx), { status: 'available', detail: 'Administrator' });

    setWindows((s) => (s.module = false));
    const noModule = await driver.available(ctx);
    assert.match(noModule.status === 'unavailable' ? `${noModule.reason} ${noModule.fix ?? ''}` : '', /module is not installed.*Microsoft-Hyper-V/);
    setWindows((s) => ((s.module = true), (s.vmms = 'Stopped')));
    const stopped = await driver.available(ctx);
    assert.match(stopped.status === 'unavailable' ? stopped.reason : '', /vmms\) is Stopped/);

    setWindows((s) => ((s.vmms = 'Running'), (s.rights = { administrator: false, hypervAdministrators: true })));
    const member = await driver.available(ctx);
    assert.equal(member.status, 'needs-elevation');
    assert.equal(member.status === 'needs-elevation' ? member.elevation : '', 'administrator');
    assert.match(member.status === 'needs-elevation' ? member.reason : '', /S-1-5-32-544.*only with --hyperv-virtual-switch/);
    assert.equal((await driver.available(await context('avail2', { 'hyperv-virtual-switch': 'Default Switch' }))).status, 'available');

    setWindows((s) => (s.rights = { administrator: false, hypervAdministrators: false }));
    const nobody = await driver.available(await context('avail3', { 'hyperv-virtual-switch': 'Default Switch' }));
    assert.equal(nobody.status === 'needs-elevation' ? nobody.elevation : '', 'hyperv-administrators');
    assert.match(nobody.status === 'needs-elevation' ? nobody.reason : '', /S-1-5-32-578/);

    // Once an Administrator has made the switch and NAT, a Hyper-V Administrator may run the cluster.
    setWindows((s) => (s.rights = { administrator: true, hypervAdministrators: false }));
    await driver.ensureNetwork(ctx, { ports: [] });
    setWindows((s) => (s.rights = { administrator: false, hypervAdministrators: true }));
    assert.deepEqual(await driver.available(ctx), { status: 'available', detail: 'Hyper-V Administrators' });
    assert.equal((await driver.available(await context('avail4', { 'hyperv-nat': 'ics' }))).status, 'needs-elevation', 'the ICS network does not exist yet');
    setWindows((s) => (s.rights = { administrator: true, hypervAdministrators: false }));
    await driver.delete(ctx);
  });

  test('winnat: switch, gateway, NetNat and VM for two profiles; stop, kill, delete leave nothing of ours and nothing else touched', async () => {
    host((s) => s.netNats.push({ name: 'DockerNAT', prefix: '10.0.75.0/24', active: true }));
    const a = await context('a');
    const planA = await driver.ensureNetwork(a, { ports: [] });
    assert.deepEqual(planA.guestAddress, { kind: 'static', cidr: '172.31.240.2/24', gateway: '172.31.240.1' });
    assert.equal(planA.mode, 'winnat');
    assert.match(planA.mac ?? '', /^02(:[0-9a-f]{2}){5}$/);
    let w = windows();
    const ours = w.switches.find((s) => s.name === 'devcluster');
    assert.equal(ours?.type, 1);
    assert.equal(ours?.notes, 'Created by devcluster');
    assert.deepEqual(w.hostAdapters.find((x) => x.switchId === ours?.id)?.addresses, ['172.31.240.1/24']);
    assert.deepEqual(w.netNats.map((n) => `${n.name} ${n.prefix}`).sort(), ['DockerNAT 10.0.75.0/24', 'devcluster-nat 172.31.240.0/24']);
    const registry = JSON.parse(readFileSync(hypervRegistryPath(home), 'utf8')) as { entries: Record<string, { createdByDevcluster: boolean; users: Record<string, string> }> };
    assert.deepEqual(Object.keys(registry.entries).sort(), [`host-address:${ours?.id}`, 'netnat:devcluster-nat', 'switch:devcluster']);
    assert.ok(Object.values(registry.entries).every((e) => e.createdByDevcluster && 'a' in e.users));
    assert.ok(a.state.require().resources.some((r) => r.kind === 'hyperv-switch' && r.shared === true));

    const b = await context('b');
    const planB = await driver.ensureNetwork(b, { ports: [] });
    assert.deepEqual(planB.guestAddress, { kind: 'static', cidr: '172.31.240.3/24', gateway: '172.31.240.1' });
    assert.equal(windows().switches.filter((s) => s.name === 'devcluster').length, 1, 'the second profile shares the switch');
    // ensureNetwork again: the same plan (the address survives restarts), nothing new on the host.
    assert.deepEqual(await driver.ensureNetwork(a, { ports: [] }), planA);

    await driver.create(a, { ...spec, network: planA });
    w = windows();
    const vm = w.vms[0];
    assert.equal(w.vms.length, 1);
    assert.equal(vm?.name, 'devcluster-a');
    assert.equal(vm?.memoryBytes, 4096 * 1048576);
    assert.equal(vm?.cpus, 2);
    assert.equal(vm?.secureBoot, false);
    assert.equal(vm?.automaticCheckpoints, false);
    assert.equal(vm?.switchId, ours?.id);
    assert.equal(vm?.mac, (planA.mac ?? '').replace(/:/g, '').toUpperCase());
    assert.deepEqual(vm?.dvds, [spec.seedIso, ...spec.dataIsos]);
    assert.equal(vm?.com1, '\\\\.\\pipe\\devcluster-a');
    const vhd = join(a.paths.disks, 'disk.vhdx');
    assert.deepEqual(w.vhds[vhd], { parent: spec.image.disk, size: 20480 * 1048576 });
    assert.ok(a.state.has('file', vhd));
    assert.ok(a.state.has('hyperv-vm', 'devcluster-a'));
    await driver.create(a, { ...spec, network: planA });
    assert.equal(windows().vms.length, 1, 'create is idempotent');
    assert.equal(await driver.state(a), 'stopped');

    await driver.start(a);
    assert.equal(await driver.state(a), 'running');
    assert.deepEqual(await driver.address(a, { deadline: Date.now() + 1000 }), { ip: '172.31.240.2', source: 'static' });
    assert.deepEqual((await driver.details(a)).acceleration?.accelerator, 'hyperv');
    await driver.stop(a, { timeoutMs: 1000 });
    assert.equal(await driver.state(a), 'stopped');
    assert.equal(windows().calls.filter((c) => c.op === 'turn-off-vm').length, 0, 'a guest that shuts down is not turned off');

    await driver.start(a);
    setWindows((s) => (s.guestIgnoresShutdown = true));
    await driver.stop(a, { timeoutMs: 30 });
    assert.equal(await driver.state(a), 'stopped');
    assert.ok(a.reports.some((r) => /did not shut down.*turning the VM off/.test(r)));
    assert.equal(windows().calls.filter((c) => c.op === 'turn-off-vm').length, 1);

    // A guest without the Shutdown integration service: Stop-VM fails, the VM is turned off all the same.
    await driver.start(a);
    setWindows((s) => s.fail.push({ op: 'shutdown-vm', at: 'Stop-VM', fullyQualifiedErrorId: 'Unspecified,Microsoft.HyperV.PowerShell.Commands.StopVM', exceptionType: 'Microsoft.HyperV.PowerShell.VirtualizationException', times: 1 }));
    await driver.stop(a, { timeoutMs: 30 });
    assert.equal(await driver.state(a), 'stopped');
    assert.ok(a.reports.some((r) => /could not ask the guest to shut down \[Unspecified,Microsoft\.HyperV\.PowerShell\.Commands\.StopVM\]/.test(r)));

    await driver.start(a);
    await driver.delete(a);
    w = windows();
    assert.equal(w.vms.length, 0);
    assert.equal(w.vhds[vhd] !== undefined && existsSync(vhd), false);
    assert.equal(w.switches.filter((s) => s.name === 'devcluster').length, 1, 'profile b still uses the switch');
    assert.ok(w.netNats.some((n) => n.name === 'devcluster-nat'));
    assert.deepEqual(a.state.require().resources, []);
    assert.equal(await driver.state(a), 'absent');

    await driver.delete(b);
    w = windows();
    assert.deepEqual(w.switches.map((s) => s.id), [DEFAULT_SWITCH_ID], 'only the Default Switch is left');
    assert.deepEqual(w.netNats.map((n) => n.name), ['DockerNAT'], 'the foreign NetNat is untouched');
    assert.deepEqual(w.hostAdapters, []);
    assert.equal(existsSync(hypervRegistryPath(home)), false);
    await driver.delete(b);
  });

  test('an odd memory size is refused before anything is created', async () => {
    host();
    const ctx = await context('odd');
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    const before = windows().calls.length;
    await rejectsWith(driver.create(ctx, { ...spec, memoryMiB: 4019, network: plan }), 'HYPERV_MEMORY_UNALIGNED', /multiples of 2 MiB.*4019/);
    assert.equal(windows().calls.length, before);
    assert.deepEqual(windows().vms, []);
    await driver.delete(ctx);
  });

  test('New-NetNat failing part-way: the error keeps its FullyQualifiedErrorId, what was recorded is removed by delete', async () => {
    host((s) => s.fail.push({ op: 'new-netnat', at: 'New-NetNat', fullyQualifiedErrorId: 'Windows System Error 87,New-NetNat', exceptionType: 'Microsoft.Management.Infrastructure.CimException', message: 'The parameter is incorrect.' }));
    const ctx = await context('natfail');
    const e = await rejectsWith(driver.ensureNetwork(ctx, { ports: [] }), 'POWERSHELL_SCRIPT_FAILED', /Windows System Error 87,New-NetNat; Microsoft\.Management\.Infrastructure\.CimException/);
    assert.equal((e as { details?: { fullyQualifiedErrorId?: string } }).details?.fullyQualifiedErrorId, 'Windows System Error 87,New-NetNat');
    const kinds = ctx.state.require().resources.map((r) => r.kind).sort();
    assert.deepEqual(kinds, ['hyperv-host-address', 'hyperv-netnat', 'hyperv-switch'], 'each thing was recorded before its script ran');
    assert.equal(windows().switches.length, 2);
    await driver.delete(ctx);
    const w = windows();
    assert.deepEqual(w.switches.map((s) => s.id), [DEFAULT_SWITCH_ID]);
    assert.deepEqual(w.netNats, []);
    assert.deepEqual(ctx.state.require().resources, []);
  });

  test('create stopped part-way (Set-VMComPort failing) is taken up again by the next create: one VM, fully configured', async () => {
    host((s) => s.fail.push({ op: 'create-vm', at: 'Set-VMComPort', fullyQualifiedErrorId: 'OperationFailed,Microsoft.HyperV.PowerShell.Commands.SetVMComPort', exceptionType: 'Microsoft.HyperV.PowerShell.VirtualizationException', times: 1 }));
    const ctx = await context('partial');
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    await rejectsWith(driver.create(ctx, { ...spec, network: plan }), 'POWERSHELL_SCRIPT_FAILED', /SetVMComPort/);
    assert.equal(windows().vms.length, 1);
    assert.equal(windows().vms[0]?.com1, '');
    await driver.create(ctx, { ...spec, network: plan });
    assert.equal(windows().vms.length, 1);
    assert.equal(windows().vms[0]?.com1, '\\\\.\\pipe\\devcluster-partial');
    await driver.delete(ctx);
    assert.deepEqual(windows().vms, []);
  });

  test('create stopped after New-VM, before its Id was saved: delete still unregisters that VM (found by name and folder) before removing its files', async () => {
    host((s) => {
      s.fail.push({ op: 'create-vm', at: 'Set-VM', fullyQualifiedErrorId: 'OperationFailed,Microsoft.HyperV.PowerShell.Commands.SetVM', exceptionType: 'Microsoft.HyperV.PowerShell.VirtualizationException', times: 1 });
      s.vms.push({ id: '99999999-9999-4999-8999-999999999999', name: 'devcluster-crashed', path: 'D:\\VMs\\someone-else', state: 2, vhd: 'D:\\x.vhdx', mac: '00155D000001', switchId: DEFAULT_SWITCH_ID, memoryBytes: 1 << 30, cpus: 1, dvds: [], com1: '', secureBoot: true, automaticCheckpoints: true, snapshots: [], ipAddresses: [] });
    });
    const ctx = await context('crashed');
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    await rejectsWith(driver.create(ctx, { ...spec, network: plan }), 'POWERSHELL_SCRIPT_FAILED', /SetVM/);
    assert.equal(windows().vms.length, 2, 'New-VM ran');
    assert.equal((ctx.state.require().driverData['hyperv'] as { vmId?: string }).vmId, undefined, 'the Id was never saved');
    await driver.delete(ctx);
    assert.deepEqual(windows().vms.map((v) => v.id), ['99999999-9999-4999-8999-999999999999'], 'ours unregistered, the same-named VM elsewhere left alone');
    assert.ok(windows().calls.some((c) => c.op === 'find-own-vm'));
    assert.deepEqual(ctx.state.require().resources, []);
  });

  test('a VM devcluster does not manage, connected to our switch, keeps the switch, address and NetNat through the last delete; a later delete removes them', async () => {
    host();
    const a = await context('sharedsw');
    await driver.ensureNetwork(a, { ports: [] });
    const ours = windows().switches.find((x) => x.name === 'devcluster')?.id as string;
    setWindows((s) => s.vms.push({ id: '77777777-7777-4777-8777-777777777777', name: 'my-own-vm', path: 'D:\\VMs', state: 2, vhd: 'D:\\y.vhdx', mac: '00155D000002', switchId: ours, memoryBytes: 1 << 30, cpus: 1, dvds: [], com1: '', secureBoot: true, automaticCheckpoints: true, snapshots: [], ipAddresses: [] }));
    await driver.delete(a);
    assert.ok(a.reports.some((r) => /leaving devcluster's switch.*"my-own-vm"/.test(r)));
    let w = windows();
    assert.ok(w.switches.some((x) => x.id === ours));
    assert.equal(w.netNats.filter((n) => n.name === 'devcluster-nat').length, 1);
    assert.ok(w.hostAdapters.some((x) => x.switchId === ours && x.addresses.some((y) => y.startsWith('172.31.240.1/'))));
    assert.deepEqual(a.state.require().resources, []);
    // The user's VM gone, the next profile's delete removes what devcluster made.
    setWindows((s) => (s.vms = s.vms.filter((v) => v.name !== 'my-own-vm')));
    const b = await context('sharedsw2');
    await driver.ensureNetwork(b, { ports: [] });
    await driver.delete(b);
    w = windows();
    assert.deepEqual(w.switches.map((x) => x.id), [DEFAULT_SWITCH_ID]);
    assert.deepEqual(w.netNats, []);
    assert.equal(existsSync(hypervRegistryPath(home)), false);
  });

  test('our switch renamed by hand is found by its Id: not made twice, and removed by delete', async () => {
    host();
    const a = await context('renamed');
    await driver.ensureNetwork(a, { ports: [] });
    setWindows((s) => {
      for (const x of s.switches) if (x.name === 'devcluster') x.name = 'k8s lab';
    });
    const plan = await driver.ensureNetwork(a, { ports: [] });
    assert.deepEqual(plan.guestAddress, { kind: 'static', cidr: '172.31.240.2/24', gateway: '172.31.240.1' });
    assert.deepEqual(windows().switches.map((x) => x.name).sort(), ['Standardväxel', 'k8s lab']);
    await driver.delete(a);
    assert.deepEqual(windows().switches.map((x) => x.id), [DEFAULT_SWITCH_ID]);
  });

  test('a create script too long for a command line reaches PowerShell as a BOM\'d .ps1 with -File, removed afterwards', async () => {
    host();
    const scripts = join(dir, 'ps-temp');
    mkdirSync(scripts, { recursive: true });
    const longDriver = createHypervDriver({ platform: 'win32', powershell: POWERSHELL, pollMs: 5, logSerial: false, fileRetryMs: 200, tempDir: scripts });
    const ctx = await context('long');
    const plan = await longDriver.ensureNetwork(ctx, { ports: [] });
    const isos = Array.from({ length: 40 }, (_, i) => join(dir, `${'ü'.repeat(300)}-${i}.iso`));
    await longDriver.create(ctx, { ...spec, dataIsos: isos, network: plan });
    assert.deepEqual(windows().vms[0]?.dvds, [spec.seedIso, ...isos], 'the double read every path from the file, non-ASCII intact');
    assert.deepEqual(readdirSync(scripts), []);
    assert.deepEqual(windows().calls.filter((c) => c.op === 'create-vm').map((c) => c.via), ['file']);
    assert.ok(windows().calls.filter((c) => c.op !== 'create-vm').every((c) => c.via === 'encoded'));
    await longDriver.delete(ctx);
  });

  test('leftovers: a same-named VM elsewhere is not ours; a VM removed by hand makes start fail clearly and delete still clean up', async () => {
    host((s) => s.vms.push({ id: '99999999-9999-4999-8999-999999999999', name: 'devcluster-left', path: 'D:\\VMs\\someone-else', state: 2, vhd: 'D:\\x.vhdx', mac: '00155D000001', switchId: DEFAULT_SWITCH_ID, memoryBytes: 1 << 30, cpus: 1, dvds: [], com1: '', secureBoot: true, automaticCheckpoints: true, snapshots: [], ipAddresses: [] }));
    const ctx = await context('left');
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    await driver.create(ctx, { ...spec, network: plan });
    assert.equal(windows().vms.filter((v) => v.name === 'devcluster-left').length, 2, 'the other VM of that name was not taken over');
    const mine = (ctx.state.require().driverData['hyperv'] as { vmId: string }).vmId;
    assert.notEqual(mine, '99999999-9999-4999-8999-999999999999');
    setWindows((s) => (s.vms = s.vms.filter((v) => v.id !== mine)));
    assert.equal(await driver.state(ctx), 'absent');
    await rejectsWith(driver.start(ctx), 'HYPERV_VM_GONE', /not registered in Hyper-V/);
    await driver.stop(ctx, { timeoutMs: 10 });
    await driver.delete(ctx);
    const w = windows();
    assert.deepEqual(w.vms.map((v) => v.id), ['99999999-9999-4999-8999-999999999999']);
    assert.deepEqual(w.switches.map((s) => s.id), [DEFAULT_SWITCH_ID]);
    assert.deepEqual(ctx.state.require().resources, []);
  });

  test('without Administrator, winnat stops before creating anything and names the missing right', async () => {
    host((s) => (s.rights = { administrator: false, hypervAdministrators: true }));
    const ctx = await context('noadmin');
    await rejectsWith(driver.ensureNetwork(ctx, { ports: [] }), 'HYPERV_RIGHTS', /elevated Administrator.*S-1-5-32-544/);
    assert.deepEqual(windows().switches.map((s) => s.id), [DEFAULT_SWITCH_ID]);
    assert.deepEqual(ctx.state.require().resources, []);
    // Hyper-V's own access-denied record becomes the same error, matched by id, not by text.
    setWindows((s) => s.fail.push({ op: 'vm-state', fullyQualifiedErrorId: 'AccessDenied,Microsoft.HyperV.PowerShell.Commands.GetVM', exceptionType: 'Microsoft.HyperV.PowerShell.VirtualizationException', message: 'Sie haben nicht die erforderliche Berechtigung.' }));
    await ctx.state.update((s) => (s.driverData['hyperv'] = { vmId: '1d2c3b4a-5e6f-4708-9a1b-2c3d4e5f6a7b' }));
    await rejectsWith(driver.state(ctx), 'HYPERV_RIGHTS', /AccessDenied/);
  });

  test('a NetNat that appeared over our subnet since it was chosen is a conflict, explained', async () => {
    host();
    const ctx = await context('conflict');
    await driver.ensureNetwork(ctx, { ports: [] });
    setWindows((s) => s.netNats.push({ name: 'WSLNat', prefix: '172.31.240.128/25', active: true }));
    await rejectsWith(driver.ensureNetwork(ctx, { ports: [] }), 'HYPERV_NAT_CONFLICT', /"WSLNat" \(172\.31\.240\.128\/25\) overlaps 172\.31\.240\.0\/24/);
    await driver.delete(ctx);
    assert.deepEqual(windows().netNats.map((n) => n.name), ['WSLNat']);
  });

  test('our switch without our registry (a lost network/hyperv.json) is used, not duplicated, and never removed', async () => {
    host();
    const first = await context('first');
    await driver.ensureNetwork(first, { ports: [] });
    rmSync(hypervRegistryPath(home));
    home = join(dir, `home-${Math.random().toString(36).slice(2)}`);
    const other = await context('other');
    await driver.ensureNetwork(other, { ports: [] });
    assert.equal(windows().switches.filter((s) => s.name === 'devcluster').length, 1);
    assert.ok(other.reports.some((r) => /not recorded in this DEVCLUSTER_HOME/.test(r)));
    await driver.delete(other);
    assert.equal(windows().switches.filter((s) => s.name === 'devcluster').length, 1, 'a switch this home cannot prove it made stays');
  });

  test('a subnet taken by a VPN route or another NetNat is avoided', async () => {
    host((s) => {
      s.routes.push({ destinationPrefix: '172.31.240.0/22', nextHop: '10.8.0.1', interfaceAlias: 'Cisco AnyConnect', interfaceIndex: 30 });
      s.netNats.push({ name: 'nat', prefix: '172.31.244.0/24', active: true });
    });
    const ctx = await context('avoid');
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    assert.deepEqual(plan.guestAddress, { kind: 'static', cidr: '172.31.245.2/24', gateway: '172.31.245.1' });
    await driver.delete(ctx);
  });

  test('the Default Switch by its Id (localized name), the first IPv4 from KVP never fe80::, the neighbour cache, and a timeout with a cause', async () => {
    host((s) => ((s.rights = { administrator: false, hypervAdministrators: true }), (s.guestAddresses = ['fe80::215:5dff:fec0:ff01', '172.20.33.7'])));
    const ctx = await context('dflt', { 'hyperv-virtual-switch': 'Default Switch' });
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    assert.deepEqual(plan.guestAddress, { kind: 'dhcp' });
    await driver.create(ctx, { ...spec, network: plan });
    assert.equal(windows().vms[0]?.switchId, DEFAULT_SWITCH_ID);
    await driver.start(ctx);
    assert.deepEqual(await driver.address(ctx, { deadline: Date.now() + 2000 }), { ip: '172.20.33.7', source: 'hypervisor-api' });

    setWindows((s) => {
      const vm = s.vms[0] as DoubleState['vms'][number];
      vm.ipAddresses = ['fe80::215:5dff:fec0:ff01'];
      s.neighbors.push({ ip: '172.20.33.9', mac: vm.mac.replace(/(..)(?!$)/g, '$1-'), state: 4 });
    });
    assert.deepEqual(await driver.address(ctx, { deadline: Date.now() + 2000 }), { ip: '172.20.33.9', source: 'hypervisor-api' });

    setWindows((s) => (s.neighbors = []));
    const progress: string[] = [];
    await rejectsWith(driver.address(ctx, { deadline: Date.now() + 50, onProgress: (p) => progress.push(p) }), 'HYPERV_NO_ADDRESS', /only fe80::215:5dff:fec0:ff01.*no DHCP address.*hv_kvp_daemon/);
    assert.ok(progress.length > 0 && progress.every((p) => /so far only fe80::/.test(p)));
    await driver.delete(ctx);
    assert.deepEqual(windows().switches.map((s) => s.name), ['Standardväxel'], 'a switch devcluster did not create stays');
    await rejectsWith(driver.ensureNetwork(await context('nosw', { 'hyperv-virtual-switch': "it's $(gone)" }), { ports: [] }), 'HYPERV_SWITCH_NOT_FOUND', /no virtual switch is named "it's \$\(gone\)"/);
  });

  test('ICS: the default-route adapter shared with our switch, undone by delete; refused when another pair is shared', async () => {
    host();
    const ctx = await context('ics', { 'hyperv-nat': 'ics' });
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    assert.deepEqual(plan.guestAddress, { kind: 'dhcp' });
    assert.equal(plan.subnet, '192.168.137.0/24');
    let w = windows();
    const sw = w.switches.find((s) => s.name === 'devcluster-ics');
    const priv = w.hostAdapters.find((x) => x.switchId === sw?.id)?.guid;
    assert.deepEqual(w.ics.filter((c) => c.enabled).map((c) => [c.guid, c.type]).sort(), [[priv, 1], ['{4A0F3B2C-1D2E-4F50-8A9B-0C1D2E3F4A5B}', 0]].sort());
    await driver.delete(ctx);
    w = windows();
    assert.deepEqual(w.ics.filter((c) => c.enabled), []);
    assert.equal(w.switches.some((s) => s.name === 'devcluster-ics'), false);

    host((s) => s.ics.push({ guid: '{11111111-2222-4333-8444-555555555555}', name: 'Mobile hotspot', enabled: true, type: 0 }));
    const busy = await context('busy', { 'hyperv-nat': 'ics' });
    await rejectsWith(driver.ensureNetwork(busy, { ports: [] }), 'HYPERV_ICS_BUSY', /"Mobile hotspot"/);
    assert.ok(windows().ics.some((c) => c.name === 'Mobile hotspot' && c.enabled), 'the other sharing is left alone');
    await driver.delete(busy);

    // Sharing the user moved to their own private adapter since start is theirs: delete leaves it.
    host();
    const moved = await context('moved', { 'hyperv-nat': 'ics' });
    await driver.ensureNetwork(moved, { ports: [] });
    setWindows((s) => {
      for (const c of s.ics) if (c.type === 1) c.enabled = false;
      s.ics.push({ guid: '{66666666-7777-4888-8999-AAAAAAAAAAAA}', name: 'Ethernet 2', enabled: true, type: 1 });
    });
    await driver.delete(moved);
    assert.deepEqual(windows().ics.filter((c) => c.enabled).map((c) => c.name).sort(), ['Ethernet 2', '{4A0F3B2C-1D2E-4F50-8A9B-0C1D2E3F4A5B}']);
    assert.equal(windows().switches.some((s) => s.name === 'devcluster-ics'), false);
  });

  test('an External switch on a named adapter: created once, removed by the last delete; an unknown adapter is an input error', async () => {
    host((s) => s.switches.push({ id: '8a1b4c2d-0e3f-4a5b-9c6d-7e8f9a0b1c2d', name: 'LAN', type: 2, notes: '', adapterDescription: 'Marvell AVASTAR Wireless-AC Network Controller', adapterGuid: '{4A0F3B2C-1D2E-4F50-8A9B-0C1D2E3F4A5B}' }));
    const ctx = await context('ext', { 'hyperv-external-adapter': 'Intel(R) Ethernet Connection (7) I219-LM' });
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    assert.deepEqual(plan.guestAddress, { kind: 'dhcp' });
    assert.equal(windows().switches.filter((s) => s.type === 2).length, 2);
    // An adapter that already has an External switch: that one is used, and never removed.
    const wifi = await context('wifi', { 'hyperv-external-adapter': 'Wi-Fi' });
    await driver.ensureNetwork(wifi, { ports: [] });
    assert.equal((wifi.state.require().driverData['hyperv'] as { network: { switchName: string } }).network.switchName, 'LAN');
    await driver.delete(wifi);
    await driver.delete(ctx);
    assert.deepEqual(windows().switches.map((s) => s.name).sort(), ['LAN', 'Standardväxel']);
    await rejectsWith(driver.ensureNetwork(await context('noad', { 'hyperv-external-adapter': 'Ethernet 9' }), { ports: [] }), 'HYPERV_ADAPTER_NOT_FOUND', /"Ethernet 9"/);
  });

  test('External: a switch the user bound to the adapter after ours was removed by hand is used but never removed; ours made again keeps every profile', async () => {
    host();
    const adapter = { 'hyperv-external-adapter': 'Ethernet' };
    const a = await context('exta', adapter);
    const b = await context('extb', adapter);
    await driver.ensureNetwork(a, { ports: [] });
    await driver.ensureNetwork(b, { ports: [] });
    // The user removes devcluster's switch and binds their own to the adapter.
    setWindows((s) => {
      s.switches = s.switches.filter((x) => x.name !== 'devcluster-external');
      s.switches.push({ id: '5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e', name: 'Mine', type: 2, notes: '', adapterDescription: 'Intel(R) Ethernet Connection (7) I219-LM', adapterGuid: '{7C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E5F}' });
    });
    await driver.ensureNetwork(a, { ports: [] });
    assert.ok(a.reports.some((r) => /"Mine".*delete leaves it/.test(r)));
    await driver.delete(a);
    await driver.delete(b);
    assert.ok(windows().switches.some((x) => x.name === 'Mine'), "the user's switch survived both deletes");
    // The user's switch gone too: devcluster makes one again, and it is removed only by the last of its profiles.
    setWindows((s) => (s.switches = s.switches.filter((x) => x.name !== 'Mine')));
    const c = await context('extc', adapter);
    const d = await context('extd', adapter);
    await driver.ensureNetwork(c, { ports: [] });
    await driver.ensureNetwork(d, { ports: [] });
    setWindows((s) => (s.switches = s.switches.filter((x) => x.name !== 'devcluster-external')));
    await driver.ensureNetwork(c, { ports: [] });
    await driver.delete(c);
    assert.ok(windows().switches.some((x) => x.name === 'devcluster-external'), 'still used by extd');
    await driver.delete(d);
    assert.ok(!windows().switches.some((x) => x.name === 'devcluster-external'));
  });

  test('delete retries files Hyper-V still holds, then says who holds them; a later delete finishes the job', async () => {
    host();
    let busy = 2;
    const attempts: string[] = [];
    const holding = createHypervDriver({
      platform: 'win32',
      powershell: POWERSHELL,
      pollMs: 5,
      logSerial: false,
      fileRetryMs: 2000,
      removePath: async (path) => {
        attempts.push(path);
        if (busy > 0) {
          busy--;
          throw Object.assign(new Error(`EBUSY: resource busy or locked, rmdir '${path}'`), { code: 'EBUSY' });
        }
        rmSync(path, { recursive: true, force: true });
      },
    });
    const ctx = await context('busy', { 'hyperv-virtual-switch': 'Default Switch' });
    await holding.create(ctx, { ...spec, network: await holding.ensureNetwork(ctx, { ports: [] }) });
    await holding.delete(ctx);
    assert.ok(attempts.length >= 4, 'two refusals, then the folder and the disk');
    assert.equal(existsSync(join(ctx.paths.dir, 'hyperv')), false);

    const ctx2 = await context('held', { 'hyperv-virtual-switch': 'Default Switch' });
    await holding.create(ctx2, { ...spec, network: await holding.ensureNetwork(ctx2, { ports: [] }) });
    busy = Number.POSITIVE_INFINITY;
    await rejectsWith(holding.delete(ctx2), 'HYPERV_FILES_IN_USE', /hyperv could not be removed \(EBUSY\).*Close Hyper-V Manager/s);
    assert.deepEqual(windows().vms, [], 'the VM itself is already unregistered');
    busy = 0;
    await holding.delete(ctx2);
    assert.deepEqual(ctx2.state.require().resources, []);
  });

  test('state follows Hyper-V\'s numeric states; resume continues a Paused VM and restores a Saved one', async () => {
    host();
    const ctx = await context('pause', { 'hyperv-virtual-switch': 'Default Switch' });
    await driver.create(ctx, { ...spec, network: await driver.ensureNetwork(ctx, { ports: [] }) });
    const states: Array<[number, string]> = [[2, 'running'], [3, 'stopped'], [9, 'paused'], [6, 'saved'], [10, 'starting'], [4, 'stopping'], [32781, 'stopping']];
    for (const [n, name] of states) {
      setWindows((s) => ((s.vms[0] as DoubleState['vms'][number]).state = n));
      assert.equal(await driver.state(ctx), name, `state ${n}`);
    }
    setWindows((s) => ((s.vms[0] as DoubleState['vms'][number]).state = 9));
    await driver.resume(ctx);
    assert.equal(await driver.state(ctx), 'running');
    setWindows((s) => ((s.vms[0] as DoubleState['vms'][number]).state = 6));
    await driver.resume(ctx);
    assert.equal(await driver.state(ctx), 'running');
    await driver.kill(ctx);
    assert.equal(await driver.state(ctx), 'stopped');
    await driver.delete(ctx);
  });

  test('crashReport: the cause from Hyper-V and the tail of the serial console', async () => {
    host();
    const ctx = await context('crash', { 'hyperv-virtual-switch': 'Default Switch' });
    const plan = await driver.ensureNetwork(ctx, { ports: [] });
    await driver.create(ctx, { ...spec, network: plan });
    mkdirSync(ctx.paths.logs, { recursive: true });
    writeFileSync(ctx.paths.serialLog, Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n') + '\nKernel panic - not syncing: VFS\n');
    const report = await driver.crashReport(ctx);
    assert.match(report.cause, /Hyper-V reports the VM as Off/);
    assert.match(report.log ?? '', /line 29\nKernel panic/);
    assert.doesNotMatch(report.log ?? '', /line 5\n/);
    await driver.delete(ctx);
    assert.match((await driver.crashReport(ctx)).cause, /no longer registered/);
  });
});

describe('the real CLI on Linux', () => {
  test('start --driver=hyperv says Hyper-V needs Windows, exits non-zero and creates nothing; doctor --driver hyperv says the same', async () => {
    const home = await tempDir('hyperv-cli-');
    try {
      const before = await snapshotTree(home);
      const start = await runCli(['start', '--driver=hyperv'], { home });
      assert.notEqual(start.code, 0);
      assert.match(start.stderr, /DRIVER_UNAVAILABLE: the Hyper-V driver runs only on Windows; this host runs Linux/);
      assert.deepEqual(await snapshotTree(home), before);
      const doctor = await runCli(['doctor', '--driver', 'hyperv'], { home });
      assert.notEqual(doctor.code, 0);
      assert.match(doctor.stdout, /the Hyper-V driver runs only on Windows; this host runs Linux/);
      assert.doesNotMatch(doctor.stdout, /no problems/i);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

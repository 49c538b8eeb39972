/**
 * The VMware driver's whole lifecycle on Linux, against scripted doubles of
 * vmrun (a Node.js script keeping its VMs in a JSON state file) and of
 * vmware-vdiskmanager (over the real qemu-img), both in
 * test/fixtures/vmware/double. The disks are real VMDKs: the image is a
 * streamOptimized VMDK made by qemu-img, and the VM's disk, a child written
 * by the driver, is read back through qemu-img to prove it is a delta of the
 * base and not a copy. Failures are injected part-way through the double's
 * switches (Player, a start refused, a deaf guest, no Tools, no lease, a VM
 * that dies, a conversion that fails).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriverContext, VmSpec } from '../../drivers/driver.ts';
import { basePath, createVmwareDriver, isVmwareStaticMac } from '../../drivers/vmware/index.ts';
import type { VmwareHost } from '../../drivers/vmware/host.ts';
import { readSparseDisk } from '../../drivers/vmware/vmdk.ts';
import { parseVmx } from '../../drivers/vmware/vmx.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import { StateStore } from '../../src/profile/state.ts';
import { REPO, tempDir } from '../helpers/cli.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

const skip = skipUnlessPresent(existsSync('/usr/bin/qemu-img') ? false : 'qemu-img is missing (the VMDK checks and the vdiskmanager double use it): install the Debian package qemu-utils');

const DOUBLE = join(REPO, 'test', 'fixtures', 'vmware', 'double');
const MIB = 1024 * 1024;

describe('the VMware driver over scripted doubles', { skip }, () => {
  let dir: string;
  let host: VmwareHost;
  let imageDisk: string;
  let baseRaw: Buffer;
  let spec: VmSpec;
  const calls = () => readFileSync(join(dir, 'vmrun-calls'), 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as string[]);
  const vdiskCalls = () => (existsSync(join(dir, 'vdisk-calls')) ? readFileSync(join(dir, 'vdisk-calls'), 'utf8').trim().split('\n') : []);
  const driverFor = (h: VmwareHost = host) => createVmwareDriver(h);

  before(async () => {
    // Spaces, a bar, a hash and non-ASCII in every path the driver writes or names; a double quote only where VMware can take one (the .vmx).
    dir = await tempDir('vmware lifecycle |#ü-');
    mkdirSync(join(dir, 'bin'));
    for (const p of ['vmrun', 'vmware-vdiskmanager']) copyFileSync(join(DOUBLE, p), join(dir, 'bin', p));
    execFileSync('chmod', ['+x', join(dir, 'bin', 'vmrun'), join(dir, 'bin', 'vmware-vdiskmanager')]);
    writeFileSync(join(dir, 'networking'), readFileSync(join(REPO, 'test', 'fixtures', 'vmware', 'networking-linux')));
    host = { platform: 'linux', env: { PATH: join(dir, 'bin') }, installDirs: [], networkConfig: join(dir, 'networking'), leaseFiles: [{ path: join(dir, 'dhcpd.leases'), format: 'isc' }] };
    process.env['VMRUN_DOUBLE_STATE'] = join(dir, 'vmrun-state.json');
    process.env['VMRUN_DOUBLE_CALLS'] = join(dir, 'vmrun-calls');
    process.env['VMRUN_DOUBLE_LEASES'] = join(dir, 'dhcpd.leases');
    process.env['VDISK_DOUBLE_CALLS'] = join(dir, 'vdisk-calls');

    // The cached image: an 8 MiB streamOptimized VMDK, as images/photon/build.sh makes them, in a cache entry folder.
    const entry = join(dir, 'home', 'cache', 'images', 'a'.repeat(64));
    mkdirSync(entry, { recursive: true });
    baseRaw = Buffer.alloc(8 * MIB);
    for (let i = 0; i < baseRaw.length; i += 65536) baseRaw.write(`grain ${i / 65536} of the base`, i);
    writeFileSync(join(dir, 'base.raw'), baseRaw);
    imageDisk = join(entry, 'photon-5.vmdk');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', join(dir, 'base.raw'), imageDisk]);
    const hostile = join(dir, 'media "q" |22 #x');
    mkdirSync(hostile);
    for (const f of ['seed.iso', 'bundle.iso']) writeFileSync(join(hostile, f), f);
    spec = {
      cpus: 2,
      memoryMiB: 2048,
      diskMiB: 16,
      image: { format: 'vmdk', disk: imageDisk, sha256: 'a'.repeat(64) },
      seedIso: join(hostile, 'seed.iso'),
      dataIsos: [join(hostile, 'bundle.iso')],
      network: { mode: 'nat', guestAddress: { kind: 'dhcp' }, dns: [] },
    };
  });

  after(() => {
    for (const k of ['VMRUN_DOUBLE_STATE', 'VMRUN_DOUBLE_CALLS', 'VMRUN_DOUBLE_LEASES', 'VDISK_DOUBLE_CALLS']) delete process.env[k];
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function context(name: string, home = join(dir, 'home')): Promise<DriverContext & { reports: string[] }> {
    const paths = profilePaths(home, name);
    mkdirSync(paths.dir, { recursive: true });
    const state = new StateStore(paths.state);
    await state.init(name, 'vmware');
    await state.update((s) => {
      s.image = { name: 'photon-5', sha256: 'a'.repeat(64), format: 'vmdk' };
    });
    const reports: string[] = [];
    return { profile: name, home, platform: 'linux', paths, settings: {}, state, signal: new AbortController().signal, report: (m: string) => reports.push(m), reports };
  }

  async function withDouble<T>(name: string, fn: () => Promise<T>): Promise<T> {
    process.env[name] = '1';
    try {
      return await fn();
    } finally {
      delete process.env[name];
    }
  }

  const vmxOf = (ctx: DriverContext) => join(ctx.paths.dir, 'vm', `devcluster-${ctx.profile}.vmx`);
  const callsSince = (n: number) => calls().slice(n);

  test('available: vmrun found on PATH and -T ws accepted; no vmrun, or Player only, is unavailable with the reason', async () => {
    const ctx = await context('avail');
    assert.deepEqual(await driverFor().available(ctx), { status: 'available', detail: `${join(dir, 'bin', 'vmrun')} (PATH)` });
    const none = await driverFor({ ...host, env: { PATH: join(dir, 'nothing') } }).available(ctx);
    assert.equal(none.status, 'unavailable');
    assert.match(none.status === 'unavailable' ? none.reason : '', /vmrun was not found \(looked at PATH\)/);
    const player = await withDouble('VMRUN_DOUBLE_PLAYER', () => driverFor().available(ctx));
    assert.equal(player.status, 'unavailable');
    assert.match(player.status === 'unavailable' ? `${player.reason} ${player.fix ?? ''}` : '', /Player.*Workstation Pro/s);
    const appleSilicon = await driverFor({ ...host, platform: 'darwin', arch: 'arm64' }).available(ctx);
    assert.equal(appleSilicon.status, 'unavailable');
    assert.match(appleSilicon.status === 'unavailable' ? `${appleSilicon.reason} ${appleSilicon.fix ?? ''}` : '', /Apple silicon.*x86_64.*--driver=qemu/s);
  });

  test('ensureNetwork: a static MAC in VMware\'s range, kept, and vmnet8\'s subnet from its configuration', async () => {
    const d = driverFor();
    const ctx = await context('net');
    const plan = await d.ensureNetwork(ctx, { ports: [] });
    assert.ok(isVmwareStaticMac(plan.mac ?? ''), plan.mac);
    assert.equal(plan.subnet, '192.168.79.0/24');
    assert.equal(plan.gateway, '192.168.79.2');
    assert.equal((await d.ensureNetwork(ctx, { ports: [] })).mac, plan.mac);
  });

  test('create: the .vmx from the model, the disk a child of a base converted once, nothing copied', async () => {
    const d = driverFor();
    const ctx = await context('create');
    const plan = await d.ensureNetwork(ctx, { ports: [] });
    await d.create(ctx, { ...spec, network: plan });
    const base = basePath(imageDisk, 16);
    assert.deepEqual(vdiskCalls(), [`-r ${imageDisk} -t 0 ${vdiskCalls()[0]?.split(' -t 0 ')[1] ?? ''}`, `-x 16MB ${vdiskCalls()[0]?.split(' -t 0 ')[1] ?? ''}`]);
    assert.match(vdiskCalls()[0] ?? '', / -t 0 .*\/\.vmware\/\.[0-9a-f]{8}\.converting\.vmdk$/, 'converted under a temporary name');
    assert.deepEqual(readdirSync(join(imageDisk, '..', '.vmware')), ['base-16m.vmdk'], 'the temporary name is gone');

    const vmx = parseVmx(readFileSync(vmxOf(ctx), 'utf8'));
    assert.equal(vmx.get('guestos'), 'vmware-photon-64');
    assert.equal(vmx.get('numvcpus'), '2');
    assert.equal(vmx.get('memsize'), '2048');
    assert.equal(vmx.get('ethernet0.address'), plan.mac);
    assert.equal(vmx.get('sata0:0.filename'), spec.seedIso);
    assert.equal(vmx.get('sata0:1.filename'), spec.dataIsos[0]);
    assert.equal(vmx.get('serial0.filename'), ctx.paths.serialLog);
    assert.equal(vmx.get('scsi0:0.filename'), 'disk.vmdk');

    const disk = join(ctx.paths.dir, 'vm', 'disk.vmdk');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', disk], { encoding: 'utf8' })) as { 'virtual-size': number; 'backing-filename': string; 'actual-size': number };
    assert.equal(info['backing-filename'], base);
    assert.equal(info['virtual-size'], 16 * MIB);
    assert.ok(statSync(disk).size < MIB, `the child holds tables, not data (${statSync(disk).size} bytes)`);
    const child = await readSparseDisk(disk);
    const parent = await readSparseDisk(base);
    assert.equal(child?.descriptor.parentCid, parent?.descriptor.cid);
    execFileSync('qemu-img', ['check', disk]);
    execFileSync('qemu-img', ['convert', '-f', 'vmdk', '-O', 'raw', disk, join(dir, 'through-child.raw')]);
    const seen = readFileSync(join(dir, 'through-child.raw'));
    assert.ok(seen.subarray(0, 8 * MIB).equals(baseRaw), 'the guest reads the image through its disk');
    assert.ok(seen.subarray(8 * MIB).every((b) => b === 0), 'and zeros beyond it');

    assert.ok(ctx.state.has('dir', join(ctx.paths.dir, 'vm')) && ctx.state.has('vm', vmxOf(ctx)), 'recorded');
    assert.equal(await d.state(ctx), 'stopped');

    const before = { vmx: statSync(vmxOf(ctx)).mtimeMs, disk: statSync(disk).mtimeMs, vdisk: vdiskCalls().length };
    await d.create(ctx, { ...spec, network: plan });
    assert.deepEqual({ vmx: statSync(vmxOf(ctx)).mtimeMs, disk: statSync(disk).mtimeMs, vdisk: vdiskCalls().length }, before, 'a second create changes nothing');
    const other = await context('create-2');
    await d.create(other, spec);
    assert.equal(vdiskCalls().length, before.vdisk, 'a second profile of the same size shares the base');
  });

  test('a memory size VMware cannot power on (not a multiple of 4 MiB) is rounded down, and the user told', async () => {
    const ctx = await context('odd-memory');
    await driverFor().create(ctx, { ...spec, memoryMiB: 2050 });
    assert.equal(parseVmx(readFileSync(vmxOf(ctx), 'utf8')).get('memsize'), '2048');
    assert.ok(ctx.reports.some((r) => /multiples of 4 MiB: the VM gets 2048 MiB, not 2050/.test(r)), ctx.reports.join('\n'));
  });

  test('create refuses, writing nothing: not a VMDK, a disk smaller than the image, a home VMware cannot name', async () => {
    const d = driverFor();
    const ctx = await context('refused');
    await rejectsWith(d.create(ctx, { ...spec, image: { ...spec.image, format: 'qcow2' } }), 'VMWARE_IMAGE_UNSUITABLE');
    await rejectsWith(d.create(ctx, { ...spec, image: { ...spec.image, disk: join(dir, 'base.raw') } }), 'VMWARE_IMAGE_UNSUITABLE');
    await rejectsWith(d.create(ctx, { ...spec, diskMiB: 4 }), 'VMWARE_DISK_TOO_SMALL');
    assert.equal(existsSync(join(ctx.paths.dir, 'vm')), false);
    const quoted = join(dir, 'home "quoted"');
    const entry = join(quoted, 'cache', 'images', 'b'.repeat(64));
    mkdirSync(entry, { recursive: true });
    copyFileSync(imageDisk, join(entry, 'photon-5.vmdk'));
    const q = await context('quoted', quoted);
    await rejectsWith(d.create(q, { ...spec, image: { ...spec.image, disk: join(entry, 'photon-5.vmdk') } }), 'VMWARE_PATH_UNSUPPORTED');
    assert.equal(existsSync(join(q.paths.dir, 'vm')), false);
    assert.equal(existsSync(join(entry, '.vmware')), false);
    assert.deepEqual(q.state.require().resources, []);
  });

  test('two profiles converting the same base at once: one base is kept and both disks are its children', async () => {
    const d = driverFor();
    const [a, b] = [await context('race-a'), await context('race-b')];
    await Promise.all([d.create(a, { ...spec, diskMiB: 32 }), d.create(b, { ...spec, diskMiB: 32 })]);
    const base = await readSparseDisk(basePath(imageDisk, 32));
    for (const ctx of [a, b]) assert.equal((await readSparseDisk(join(ctx.paths.dir, 'vm', 'disk.vmdk')))?.descriptor.parentCid, base?.descriptor.cid, ctx.profile);
    assert.deepEqual(readdirSync(join(imageDisk, '..', '.vmware')).sort(), ['base-16m.vmdk', 'base-32m.vmdk'], 'no temporary file left');
  });

  test('a failed conversion leaves no base and no temporary file', async () => {
    const ctx = await context('vdisk-fails');
    const failed = await withDouble('VDISK_DOUBLE_FAIL', () => rejectsWith(driverFor().create(ctx, { ...spec, diskMiB: 24 }), 'VMWARE_DISK_FAILED'));
    assert.match(failed.message, /Insufficient disk space/);
    assert.deepEqual(readdirSync(join(imageDisk, '..', '.vmware')).sort(), ['base-16m.vmdk', 'base-32m.vmdk']);
    assert.equal(existsSync(join(ctx.paths.dir, 'vm', 'disk.vmdk')), false);
  });

  test('start, address from VMware Tools, a second start, soft stop, delete: the exact vmrun calls', async () => {
    const d = driverFor();
    const ctx = await context('life');
    await d.create(ctx, spec);
    const vmx = vmxOf(ctx);
    const n = calls().length;
    await d.start(ctx);
    assert.deepEqual(callsSince(n), [['-T', 'ws', 'list'], ['-T', 'ws', 'start', vmx, 'nogui']]);
    assert.equal(await d.state(ctx), 'running');
    assert.equal((await d.details(ctx)).acceleration?.hardware, true);

    const address = await d.address(ctx, { deadline: Date.now() + 20_000 });
    assert.equal(address.source, 'hypervisor-api');
    assert.match(address.ip ?? '', /^192\.168\.79\.\d+$/);

    const m = calls().length;
    await d.start(ctx);
    assert.deepEqual(callsSince(m), [['-T', 'ws', 'list']], 'a running VM is not started twice');

    const s = calls().length;
    await d.stop(ctx, { timeoutMs: 10_000 });
    assert.deepEqual(callsSince(s), [['-T', 'ws', 'list'], ['-T', 'ws', 'stop', vmx, 'soft'], ['-T', 'ws', 'list']]);
    assert.equal(await d.state(ctx), 'stopped');
    assert.deepEqual(await d.details(ctx), {}, 'no accelerator for a VM that does not run');

    const base = basePath(imageDisk, 16);
    // A snapshot taken in VMware's window: the .vmsd names disk.vmdk, whose parent is the shared base.
    writeFileSync(vmx.replace(/\.vmx$/, '.vmsd'), '.encoding = "UTF-8"\nsnapshot.numSnapshots = "1"\nsnapshot0.uid = "1"\nsnapshot0.disk0.fileName = "disk.vmdk"\nsnapshot0.disk0.node = "scsi0:0"\n');
    const x = calls().length;
    await d.delete(ctx);
    assert.deepEqual(callsSince(x), [['-T', 'ws', 'list'], ['-T', 'ws', 'deleteVM', vmx]]);
    // The double's deleteVM removes every disk and image a .vmx names: the driver gave it one that names none.
    assert.ok(existsSync(base), 'the shared base survives');
    assert.ok(existsSync(spec.seedIso) && existsSync(spec.dataIsos[0] as string), 'the ISOs survive');
    assert.equal(existsSync(join(ctx.paths.dir, 'vm')), false);
    assert.equal(await d.state(ctx), 'absent');
    assert.deepEqual(ctx.state.require().resources, []);
    assert.equal(ctx.state.require().driverData['vmware'], undefined);
    await d.delete(ctx);
  });

  test('a .vmx that cannot be rewritten without its disks is not handed to deleteVM; delete still removes the VM folder', async () => {
    const d = driverFor();
    const ctx = await context('odd-vmx');
    await d.create(ctx, spec);
    writeFileSync(vmxOf(ctx), `${readFileSync(vmxOf(ctx), 'utf8')}key with spaces = "x"\n`);
    const x = calls().length;
    await d.delete(ctx);
    assert.deepEqual(callsSince(x), [['-T', 'ws', 'list']], 'no deleteVM with a .vmx that still names the disk');
    assert.equal(existsSync(join(ctx.paths.dir, 'vm')), false);
    assert.ok(existsSync(basePath(imageDisk, 16)), 'the shared base survives');
    assert.ok(ctx.reports.some((r) => /cannot be rewritten without its disks/.test(r)), ctx.reports.join('\n'));
  });

  test('no VMware Tools: the address comes from the ISC leases (CRLF); a bridge address from Tools is passed over', async () => {
    const d = driverFor();
    const ctx = await context('leases');
    await d.create(ctx, spec);
    await withDouble('VMRUN_DOUBLE_CRLF', () => d.start(ctx));
    assert.ok(readFileSync(join(dir, 'dhcpd.leases'), 'utf8').includes('\r\n'));
    const progress: string[] = [];
    const viaLease = await withDouble('VMRUN_DOUBLE_NO_TOOLS', () => d.address(ctx, { deadline: Date.now() + 1500, onProgress: (p) => progress.push(p) }));
    assert.equal(viaLease.source, 'dhcp-leases');
    assert.match(viaLease.ip ?? '', /^192\.168\.79\.\d+$/);
    const bridged = await withDouble('VMRUN_DOUBLE_BRIDGE_IP', () => d.address(ctx, { deadline: Date.now() + 5000 }));
    assert.deepEqual(bridged, viaLease, 'Tools said 10.244.0.1 (cni0): the lease for the MAC wins');
    await d.kill(ctx);
    assert.equal(await d.state(ctx), 'stopped');
  });

  test('no Tools and no lease: VMWARE_NO_ADDRESS at the deadline with the likely causes; a VM that died says so at once', async () => {
    const d = driverFor();
    const ctx = await context('no-address');
    await d.create(ctx, spec);
    await withDouble('VMRUN_DOUBLE_NO_LEASE', () => d.start(ctx));
    const e = await withDouble('VMRUN_DOUBLE_NO_TOOLS', () => rejectsWith(d.address(ctx, { deadline: Date.now() + 1500 }), 'VMWARE_NO_ADDRESS'));
    assert.match(e.message, new RegExp(`no DHCP lease in ${join(dir, 'dhcpd.leases').replace(/[|.]/g, '\\$&')}`));
    assert.match(e.advice ?? '', /NAT or DHCP service is stopped[\s\S]*open-vm-tools[\s\S]*192\.168\.79\.0\/24/);
    await d.kill(ctx);

    const dead = await context('dies');
    await d.create(dead, spec);
    await withDouble('VMRUN_DOUBLE_DIE', () => d.start(dead));
    const gone = await rejectsWith(d.address(dead, { deadline: Date.now() + 60_000 }), 'VMWARE_NO_ADDRESS');
    assert.match(gone.message, /stopped before it had an address: Error: The virtual machine is not powered on/);
    assert.match((await d.crashReport(dead)).cause, /does not list the VM/);
  });

  test('a soft stop that returns before VMware powered the VM off is waited for, not escalated', async () => {
    const d = driverFor();
    const ctx = await context('slow-off');
    await d.create(ctx, spec);
    await d.start(ctx);
    const s = calls().length;
    await withDouble('VMRUN_DOUBLE_SLOW_OFF', () => d.stop(ctx, { timeoutMs: 20_000 }));
    assert.equal(await d.state(ctx), 'stopped');
    assert.deepEqual(callsSince(s).filter((c) => c[2] === 'stop').map((c) => c[4]), ['soft']);
    assert.deepEqual(ctx.reports, []);
  });

  test('a guest deaf to a soft stop is powered off after the timeout, and says so', async () => {
    const d = driverFor();
    const ctx = await context('deaf');
    await d.create(ctx, spec);
    await d.start(ctx);
    const s = calls().length;
    await withDouble('VMRUN_DOUBLE_DEAF', () => d.stop(ctx, { timeoutMs: 500 }));
    assert.equal(await d.state(ctx), 'stopped');
    assert.deepEqual(callsSince(s).filter((c) => c[2] === 'stop').map((c) => c[4]), ['soft', 'hard']);
    assert.ok(ctx.reports.some((r) => /did not shut down within 1s; powering the VM off/.test(r)), ctx.reports.join('\n'));
  });

  test('start refused: VMWARE_VMRUN_FAILED with vmrun\'s words and vmware.log; Player: VMWARE_PRODUCT_UNSUPPORTED', async () => {
    const d = driverFor();
    const ctx = await context('refused-start');
    await d.create(ctx, spec);
    const e = await withDouble('VMRUN_DOUBLE_FAIL_START', () => rejectsWith(d.start(ctx), 'VMWARE_VMRUN_FAILED'));
    assert.match(e.message, /Hyper-V are not compatible/);
    assert.match(String((e.details as { vmwareLog?: string } | undefined)?.vmwareLog), /Failed to start the virtual machine/);
    assert.equal(await d.state(ctx), 'stopped');
    await withDouble('VMRUN_DOUBLE_PLAYER', () => rejectsWith(d.start(ctx), 'VMWARE_PRODUCT_UNSUPPORTED'));
    rmSync(join(ctx.paths.dir, 'vm', 'disk.vmdk'));
    const missing = await rejectsWith(d.start(ctx), 'VMWARE_VMRUN_FAILED');
    assert.match(missing.message, /Cannot open the disk/);
  });

  test('vmrun listing the VM by its resolved path (a home behind a symlink) still counts as running', async () => {
    const d = driverFor();
    symlinkSync(join(dir, 'home'), join(dir, 'home-link'));
    const ctx = await context('linked', join(dir, 'home-link'));
    await d.create(ctx, spec);
    await withDouble('VMRUN_DOUBLE_REALPATH', async () => {
      await d.start(ctx);
      assert.ok(JSON.stringify(JSON.parse(readFileSync(join(dir, 'vmrun-state.json'), 'utf8'))).includes(join(dir, 'home', 'profiles', 'linked')), 'the double lists the resolved path');
      assert.equal(await d.state(ctx), 'running');
      await d.kill(ctx);
      assert.equal(await d.state(ctx), 'stopped');
    });
  });

  test('a suspended VM is "saved" and resume starts it; without vmrun a VM is "broken" and delete still removes it', async () => {
    const d = driverFor();
    const ctx = await context('suspended');
    await d.create(ctx, spec);
    writeFileSync(join(ctx.paths.dir, 'vm', `devcluster-${ctx.profile}.vmss`), 'memory');
    assert.equal(await d.state(ctx), 'saved');
    await d.resume(ctx);
    assert.equal(await d.state(ctx), 'running');
    await d.kill(ctx);
    const gone = driverFor({ ...host, env: { PATH: join(dir, 'nothing') } });
    assert.equal(await gone.state(ctx), 'broken');
    await gone.delete(ctx);
    assert.equal(existsSync(join(ctx.paths.dir, 'vm')), false);
    assert.ok(ctx.reports.some((r) => /vmrun is not installed any more/.test(r)));
  });
});

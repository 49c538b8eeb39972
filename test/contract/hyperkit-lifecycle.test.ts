/**
 * The HyperKit driver's whole lifecycle on Linux, against scripted doubles:
 * a compiled stand-in for hyperkit (test/fixtures/hyperkit-double/hyperkit.c,
 * named hyperkit so the driver's process checks see what they would on a
 * Mac) and one for sudo. The double answers -v and -M as HyperKit does,
 * writes its pid file, plays bootpd by adding a lease for its MAC, and
 * powers off on SIGTERM. Real processes, signals, pid files and disks;
 * failures injected part-way (hyperkit failing to start, a guest deaf to the
 * power button, no lease, sudo asking for a password).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriverContext, VmSpec } from '../../drivers/driver.ts';
import { createHyperkitDriver } from '../../drivers/hyperkit/index.ts';
import type { HyperkitHost } from '../../drivers/hyperkit/host.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import { StateStore } from '../../src/profile/state.ts';
import { REPO, tempDir } from '../helpers/cli.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

const skip = skipUnlessPresent(existsSync('/usr/bin/gcc') ? false : 'gcc is missing (it compiles the hyperkit double): install the Debian package gcc');

const FIXTURE = join(REPO, 'test', 'fixtures', 'hyperkit-double');

describe('the HyperKit driver over scripted doubles', { skip }, () => {
  let dir: string;
  let host: HyperkitHost;
  let hyperkit: string;
  let image: VmSpec['image'];
  let spec: VmSpec;
  const contexts: DriverContext[] = [];
  const driverFor = () => createHyperkitDriver(host);

  before(async () => {
    dir = await tempDir('hyperkit-lifecycle-');
    mkdirSync(join(dir, 'bin'));
    hyperkit = join(dir, 'bin', 'hyperkit');
    execFileSync('gcc', ['-O1', '-o', hyperkit, join(FIXTURE, 'hyperkit.c')]);
    copyFileSync(join(FIXTURE, 'sudo'), join(dir, 'bin', 'sudo'));
    execFileSync('chmod', ['+x', join(dir, 'bin', 'sudo')]);
    host = { sudo: join(dir, 'bin', 'sudo'), kill: '/bin/kill', leasesFile: join(dir, 'dhcpd_leases'), arch: 'x64', installDirs: [] };
    process.env['HYPERKIT_DOUBLE_LEASES'] = host.leasesFile;
    const base = Buffer.alloc(4 * 1048576);
    for (let i = 0; i < base.length; i += 4096) base.write(`block ${i / 4096}`, i);
    writeFileSync(join(dir, 'base.raw'), base);
    for (const f of ['vmlinuz', 'initrd', 'seed.iso', 'bundle.iso']) writeFileSync(join(dir, f), f);
    image = { format: 'raw', disk: join(dir, 'base.raw'), sha256: 'a'.repeat(64), kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd'), kernelCmdline: 'root=LABEL=devcluster-root console=ttyS0,115200n8' };
    spec = { cpus: 2, memoryMiB: 2048, diskMiB: 8, image, seedIso: join(dir, 'seed.iso'), dataIsos: [join(dir, 'bundle.iso')], network: { mode: 'vmnet-shared', guestAddress: { kind: 'dhcp' }, dns: [] } };
  });

  after(async () => {
    for (const ctx of contexts) await driverFor().kill(ctx).catch(() => undefined);
    delete process.env['HYPERKIT_DOUBLE_LEASES'];
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function context(name: string, settings: Record<string, unknown> = { 'hyperkit-path': hyperkit }): Promise<DriverContext & { reports: string[] }> {
    const paths = profilePaths(join(dir, 'home'), name);
    mkdirSync(paths.dir, { recursive: true });
    const state = new StateStore(paths.state);
    await state.init(name, 'hyperkit');
    const reports: string[] = [];
    const ctx = { profile: name, home: join(dir, 'home'), platform: 'darwin' as const, paths, settings, state, signal: new AbortController().signal, report: (m: string) => reports.push(m), reports };
    contexts.push(ctx);
    return ctx;
  }

  /** Runs `fn` with one of the double's failure switches on (the driver's children inherit the environment). */
  async function withDouble<T>(name: string, fn: () => Promise<T>): Promise<T> {
    process.env[name] = '1';
    try {
      return await fn();
    } finally {
      delete process.env[name];
    }
  }

  function cmdline(pid: number): string[] {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  }

  test('available: only on an Intel Mac, with hyperkit, and sudo without a password', async () => {
    const d = driverFor();
    const ctx = await context('avail');
    assert.deepEqual(await d.available(ctx), { status: 'available', detail: hyperkit });
    assert.equal((await d.available({ ...ctx, platform: 'linux' })).status, 'unavailable');
    const arm = await createHyperkitDriver({ ...host, arch: 'arm64' }).available(ctx);
    assert.equal(arm.status, 'unavailable');
    assert.match(arm.status === 'unavailable' ? arm.reason : '', /Intel/);
    const missing = await d.available({ ...ctx, settings: { 'hyperkit-path': join(dir, 'nope') } });
    assert.equal(missing.status, 'unavailable');
    await withDouble('HYPERKIT_DOUBLE_SUDO_DENY', async () => {
      const denied = await d.available(ctx);
      assert.equal(denied.status, 'needs-elevation');
      assert.match(denied.status === 'needs-elevation' ? denied.reason : '', new RegExp(`NOPASSWD: ${hyperkit}, /bin/kill -TERM \\*, /bin/kill -KILL \\*`));
    });
  });

  test('create: a disk of the requested size holding the base, a stored UUID and the MAC vmnet derives from it', async () => {
    const d = driverFor();
    const ctx = await context('create');
    await d.create(ctx, spec);
    const disk = join(ctx.paths.disks, 'disk.raw');
    assert.equal(statSync(disk).size, 8 * 1048576);
    assert.deepEqual(readFileSync(disk).subarray(0, 4 * 1048576), readFileSync(image.disk));
    const data = ctx.state.require().driverData['hyperkit'] as { uuid: string; mac: string; vm: { isos: string[]; cmdline: string } };
    assert.match(data.uuid, /^[0-9a-f-]{36}$/);
    // The double prints octets with %x ("8a:1:…"): the driver keeps them zero-padded.
    assert.match(data.mac, /^[0-9a-f]{2}:01(:[0-9a-f]{2}){4}$/);
    assert.deepEqual(data.vm.isos, [spec.seedIso, ...spec.dataIsos]);
    assert.match(data.vm.cmdline, /console=ttyS0,115200n8 systemd\.unified_cgroup_hierarchy=1$/);
    assert.ok(ctx.state.has('file', disk));
    assert.equal(await d.state(ctx), 'stopped');

    const before = statSync(disk).mtimeMs;
    await d.create(ctx, spec);
    assert.equal(statSync(disk).mtimeMs, before, 'a second create leaves the disk alone');
    assert.equal((ctx.state.require().driverData['hyperkit'] as { uuid: string }).uuid, data.uuid);
  });

  test('create refuses a disk smaller than the image, and an image without raw disk or kernel, writing nothing', async () => {
    const d = driverFor();
    const small = await context('small');
    await rejectsWith(d.create(small, { ...spec, diskMiB: 2 }), 'HYPERKIT_DISK_TOO_SMALL');
    assert.equal(existsSync(join(small.paths.disks, 'disk.raw')), false);
    const qcow = await context('qcow');
    await rejectsWith(d.create(qcow, { ...spec, image: { ...image, format: 'qcow2' } }), 'HYPERKIT_IMAGE_UNSUITABLE');
    const { kernel: _k, ...noKernel } = image;
    await rejectsWith(d.create(qcow, { ...spec, image: noKernel }), 'HYPERKIT_IMAGE_UNSUITABLE');
    assert.equal(existsSync(qcow.paths.disks), false);
  });

  test('start, address, a second start, graceful stop, delete', async () => {
    const d = driverFor();
    const ctx = await context('life');
    await d.create(ctx, spec);
    await d.start(ctx);
    assert.equal(await d.state(ctx), 'running');
    const pid = (await d.details(ctx)).pid as number;
    const argv = cmdline(pid);
    const uuid = (ctx.state.require().driverData['hyperkit'] as { uuid: string }).uuid;
    assert.equal(argv[0], hyperkit);
    assert.deepEqual(argv.slice(argv.indexOf('-U'), argv.indexOf('-U') + 2), ['-U', uuid]);
    assert.ok(argv.includes(`3,ahci-cd,${spec.seedIso}`) && argv.includes(`4,ahci-cd,${spec.dataIsos[0] as string}`), argv.join(' '));
    assert.ok(argv.includes(`kexec,${image.kernel as string},${image.initrd as string},root=LABEL=devcluster-root console=ttyS0,115200n8 systemd.unified_cgroup_hierarchy=1`));

    const address = await d.address(ctx, { deadline: Date.now() + 20_000 });
    assert.equal(address.source, 'dhcp-leases');
    assert.match(address.ip ?? '', /^192\.168\.64\.\d+$/);

    await d.start(ctx);
    assert.equal((await d.details(ctx)).pid, pid, 'a running VM is not started twice');

    await d.stop(ctx, { timeoutMs: 10_000 });
    assert.equal(await d.state(ctx), 'stopped');
    const ring = readFileSync(join(ctx.paths.logs, 'console-ring'), 'latin1');
    assert.equal(ring.length, 65536, 'the console is HyperKit\'s fixed-size ring');
    assert.match(ring, /power button/, 'stopped through the ACPI power button, not killed');
    assert.equal(existsSync(join(ctx.paths.dir, 'hyperkit.pid')), false);

    await d.delete(ctx);
    assert.equal(await d.state(ctx), 'absent');
    assert.equal(existsSync(join(ctx.paths.disks, 'disk.raw')), false);
    assert.deepEqual(ctx.state.require().resources, []);
    await d.delete(ctx);
  });

  test('a guest deaf to the power button is killed after the timeout, and says so', async () => {
    const d = driverFor();
    const ctx = await context('deaf');
    await d.create(ctx, spec);
    await withDouble('HYPERKIT_DOUBLE_DEAF', () => d.start(ctx));
    const pid = (await d.details(ctx)).pid as number;
    await d.stop(ctx, { timeoutMs: 600 });
    assert.equal(await d.state(ctx), 'stopped');
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.ok(ctx.reports.some((r) => /did not power off within 1s; killing hyperkit/.test(r)), ctx.reports.join('\n'));
  });

  test('hyperkit failing to start: HYPERKIT_START_FAILED with its own words; sudo asking for a password: HYPERKIT_SUDO_REQUIRED', async () => {
    const d = driverFor();
    const ctx = await context('fails');
    await d.create(ctx, spec);
    const failed = await withDouble('HYPERKIT_DOUBLE_FAIL', () => rejectsWith(d.start(ctx), 'HYPERKIT_START_FAILED'));
    assert.match(failed.message, /vmx_init failed/);
    assert.equal(await d.state(ctx), 'stopped');
    // vmnet fails after hyperkit wrote its pid file: still a failed start, not a running VM.
    const vmnet = await withDouble('HYPERKIT_DOUBLE_FAIL_VMNET', () => rejectsWith(d.start(ctx), 'HYPERKIT_START_FAILED'));
    assert.match(vmnet.message, /vmnet_start_interface/);
    assert.equal(await d.state(ctx), 'stopped');
    const denied = await withDouble('HYPERKIT_DOUBLE_SUDO_DENY', () => rejectsWith(d.start(ctx), 'HYPERKIT_SUDO_REQUIRED'));
    assert.match(denied.advice ?? '', /NOPASSWD/);
  });

  test('no lease: HYPERKIT_NO_LEASE naming the firewall and VPN causes; a VM that died: HYPERKIT_EXITED at once', async () => {
    const d = driverFor();
    const ctx = await context('nolease');
    await d.create(ctx, spec);
    await withDouble('HYPERKIT_DOUBLE_NO_LEASE', () => d.start(ctx));
    const e = await rejectsWith(d.address(ctx, { deadline: Date.now() + 1000 }), 'HYPERKIT_NO_LEASE');
    assert.match(e.advice ?? '', /bootpd/);
    assert.match(e.advice ?? '', /VPN/);
    await d.kill(ctx);
    await rejectsWith(d.address(ctx, { deadline: Date.now() + 60_000 }), 'HYPERKIT_EXITED');
    const report = await d.crashReport(ctx);
    assert.match(report.cause, /gone/);
    assert.match(report.log ?? '', /booting/, 'the console ring\'s text, without its NUL padding');
    assert.doesNotMatch(report.log ?? '', /\0/);
  });

  test('a pid file naming a process that is not this profile\'s hyperkit is not the VM, and is never signalled', async () => {
    const d = driverFor();
    const ctx = await context('stale');
    await d.create(ctx, spec);
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(join(ctx.paths.dir, 'hyperkit.pid'), `${stranger.pid}\n`);
      assert.equal(await d.state(ctx), 'stopped');
      await d.kill(ctx);
      assert.equal(stranger.exitCode, null);
      assert.doesNotThrow(() => process.kill(stranger.pid as number, 0), 'the stranger still runs');
      // Its command line shows it is not hyperkit: the VM starts and the pid file becomes hyperkit's.
      await d.start(ctx);
      assert.notEqual((await d.details(ctx)).pid, stranger.pid);
      await d.kill(ctx);
      assert.doesNotThrow(() => process.kill(stranger.pid as number, 0), 'still running after the VM was killed');
    } finally {
      stranger.kill('SIGKILL');
    }
  });
});

/**
 * startCluster over the fake driver: every step, the state file after it,
 * recovery after a failure at each step, resume of paused and saved VMs,
 * a VM that dies during the SSH wait, and validation that writes nothing.
 * The guest is a real sshd (test/helpers/fake-hypervisor.ts).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCluster } from '../../src/cluster/start.ts';
import { stopCluster } from '../../src/cluster/stop.ts';
import { deleteProfile } from '../../src/cluster/delete.ts';
import { clusterStatus } from '../../src/cluster/status.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { snapshotTree, tempDir } from '../helpers/cli.ts';
import { cleanQcow2 } from '../helpers/disk-images.ts';
import { isError } from '../helpers/errors.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { DriverRegistry } from '../../drivers/index.ts';
import { FAKE_DESCRIPTOR, FAKE_SWITCH, FakeDriver, INJECTED, hypervisor } from '../helpers/fake-driver.ts';
import type { FakeDriverOptions } from '../helpers/fake-driver.ts';
import { fakeHypervisorMissing, readRegistry, vmProcessAlive } from '../helpers/fake-hypervisor.ts';
import { NOTHING, PROFILE, homeWithImage, leftovers, lifecycleOptions, removeHomes, startOptions } from '../helpers/lifecycle.ts';
import { assertEverythingRecorded, lockHeld, stateFile } from '../helpers/lifecycle-checks.ts';

const skip = skipUnlessPresent(await fakeHypervisorMissing());

async function deleteAndCheck(home: string): Promise<void> {
  await deleteProfile(lifecycleOptions(home, new FakeDriver()));
  assert.deepEqual(await leftovers(home), NOTHING);
}

async function runningGuest(home: string): Promise<void> {
  const s = await clusterStatus(lifecycleOptions(home, new FakeDriver()));
  assert.deepEqual([s.host, s.guest, s.exitCode], ['Running', 'Running', 0], JSON.stringify(s));
}

describe('start over the fake driver', { skip }, () => {
  after(removeHomes);

  test('a first start runs every step in order, records each host object, and ends Running', async () => {
    const home = await homeWithImage();
    const driver = new FakeDriver();
    const r = await startCluster(startOptions(home, driver));
    assert.equal(r.created, true);
    assert.equal(r.alreadyRunning, false);
    assert.deepEqual(driver.calls().filter((c) => c !== 'state'), ['available', 'ensureNetwork', 'create', 'start', 'address']);
    assert.deepEqual(r.timings.map((t) => t.title), ['Preparing the guest image and SSH keys', 'Setting up the VM network', 'Creating the VM', 'Starting the VM', 'Waiting for the guest (SSH)']);
    const s = await stateFile(home);
    assert.equal(s?.status, 'Running');
    assert.equal(s?.driver, 'fake');
    assert.deepEqual(s?.created, { cpus: 2, memoryMiB: 4096, diskMiB: 20480, image: 'fake-guest', kubernetes: false });
    assert.deepEqual(s?.ssh, { host: '127.0.0.1', port: r.ssh.port, user: 'devcluster' });
    assert.equal(s?.image?.name, 'fake-guest');
    const paths = profilePaths(home, PROFILE);
    assert.deepEqual(s?.resources.map((x) => `${x.kind} ${x.id}`).sort(), [
      `fake-switch ${FAKE_SWITCH}`,
      `fake-vm devcluster-${PROFILE}`,
      `file ${join(paths.disks, 'disk.qcow2')}`,
      `file ${paths.seedIso}`,
      `process devcluster-${PROFILE}`,
    ]);
    assert.equal(lockHeld(home), false, 'the lock is released');
    await runningGuest(home);

    // A second start of a running cluster only verifies it.
    const again = new FakeDriver();
    const r2 = await startCluster(startOptions(home, again, { kubernetes: undefined }));
    assert.equal(r2.alreadyRunning, true);
    assert.deepEqual(again.calls().filter((c) => c !== 'state'), ['available', 'ensureNetwork', 'address']);
    assert.equal(r2.ssh.port, r.ssh.port, 'the forwarded port is kept');
    await deleteAndCheck(home);
  });

  test('a legacy driver is used only when asked for, and start says it is legacy and why', async () => {
    const home = await homeWithImage();
    const driver = new FakeDriver();
    const registry = new DriverRegistry([{ ...FAKE_DESCRIPTOR, legacy: 'it is unmaintained upstream' }], { [FAKE_DESCRIPTOR.name]: async () => driver });
    await assert.rejects(startCluster({ ...startOptions(home, driver), registry }), isError('DRIVER_NONE_AVAILABLE'));
    // A profile made with the driver keeps using it, and each start says it is legacy.
    const first = startOptions(home, driver);
    await startCluster(first);
    assert.doesNotMatch(first.captured.text(), /legacy/);
    await stopCluster({ ...lifecycleOptions(home, driver), timeoutMs: 5000 });
    const again = { ...startOptions(home, driver), registry };
    await startCluster(again);
    assert.match(again.captured.text(), /Fake is a legacy driver: it is unmaintained upstream\./);
    await deleteAndCheck(home);
  });

  test('a profile created with kubernetes:false keeps it on the next start without the option', async () => {
    const home = await homeWithImage();
    await startCluster(startOptions(home, new FakeDriver()));
    await stopCluster({ ...lifecycleOptions(home, new FakeDriver()), timeoutMs: 5000 });
    assert.equal((await stateFile(home))?.status, 'Stopped');
    const driver = new FakeDriver();
    const r = await startCluster(startOptions(home, driver, { kubernetes: undefined }));
    assert.equal(r.created, false);
    assert.deepEqual(driver.calls().filter((c) => c !== 'state'), ['available', 'ensureNetwork', 'start', 'address']);
    assert.equal((await stateFile(home))?.created?.kubernetes, false);
    assert.equal((await hypervisor.vm(home, PROFILE))?.boots, 2, 'the same VM booted a second time');
    await deleteAndCheck(home);
  });

  test('a profile created without Kubernetes refuses --kubernetes, changing nothing', async () => {
    const home = await homeWithImage();
    await startCluster(startOptions(home, new FakeDriver()));
    const before = await stateFile(home);
    const driver = new FakeDriver();
    await assert.rejects(startCluster(startOptions(home, driver, { kubernetes: true })), isError('KUBERNETES_CHOICE_IMMUTABLE'));
    assert.deepEqual(await stateFile(home), before, 'the state is unchanged');
    assert.deepEqual(driver.calls(), [], 'the driver was not asked anything');
    await deleteAndCheck(home);
  });

  // Each point where the driver fails during a first start; then a second start
  // continues, the VM runs and answers, and delete leaves nothing.
  const points = [
    'state:before',
    'ensureNetwork:before',
    'ensureNetwork:recorded',
    'ensureNetwork:after',
    'create:before',
    'create:recorded',
    'create:disk-staged',
    'create:after',
    'start:before',
    'start:recorded',
    'start:after',
    'address:before',
  ];
  for (const at of points) {
    test(`a failure at ${at}: nothing unrecorded, the lock is free, the next start recovers and delete leaves nothing`, async () => {
      const home = await homeWithImage();
      const driver = new FakeDriver({ faults: [{ at, action: 'throw' }] });
      await assert.rejects(startCluster(startOptions(home, driver)), (e: unknown) => {
        assert.match((e as Error).message, new RegExp(`${INJECTED} ${at}`));
        return true;
      });
      assert.equal(lockHeld(home), false, 'the lock is released');
      await assertEverythingRecorded(home);
      const s = await stateFile(home);
      const beforeCreateDone = at.startsWith('state') || at.startsWith('ensureNetwork') || at.startsWith('create');
      assert.equal(s?.status, beforeCreateDone ? 'Creating' : 'Stopped', `status after a failure at ${at}`);
      assert.equal(s?.created === undefined, beforeCreateDone);
      if (at === 'create:disk-staged') assert.ok(existsSync(join(profilePaths(home, PROFILE).disks, 'disk.qcow2.creating')), 'the staged disk is left for the next start');

      // The profile remembers the first start's choice of no Kubernetes, before and after the VM exists.
      const r = await startCluster(startOptions(home, new FakeDriver(), { kubernetes: undefined }));
      assert.equal(r.profile, PROFILE);
      assert.equal((await stateFile(home))?.status, 'Running');
      const vms = Object.values((await readRegistry(home)).vms);
      assert.equal(vms.length, 1, 'one VM, not two');
      assert.ok(vmProcessAlive(vms[0] as Parameters<typeof vmProcessAlive>[0]));
      await runningGuest(home);
      await deleteAndCheck(home);
    });
  }

  test('a first start with kubernetes:false that failed before the VM was created is continued without repeating the option', {

  }, async () => {
    const home = await homeWithImage();
    await assert.rejects(startCluster(startOptions(home, new FakeDriver({ faults: [{ at: 'ensureNetwork:before', action: 'throw' }] }))));
    await startCluster(startOptions(home, new FakeDriver(), { kubernetes: undefined }));
    await runningGuest(home);
    await deleteAndCheck(home);
  });

  test('a start that fails after the VM booted says the VM is still running', async () => {
    const home = await homeWithImage();
    for (const at of ['start:after', 'address:before']) {
      const driver = new FakeDriver({ faults: [{ at, action: 'throw' }] });
      await assert.rejects(startCluster(startOptions(home, driver)), (e: unknown) => {
        assert.ok(e instanceof DevclusterError, `${at}: a DevclusterError, not ${String(e)}`);
        assert.equal(e.details['vmStillRunning'], true, `${at}: details.vmStillRunning`);
        assert.match(e.advice ?? '', /The VM is still running \(4096 MiB, 2 vCPUs\)\. Continue with `devcluster start -p lab`/);
        assert.match(e.advice ?? '', /remove it with `devcluster delete -p lab`/);
        return true;
      });
      assert.ok(vmProcessAlive((await hypervisor.vm(home, PROFILE)) ?? {}), `${at}: the VM really is running`);
      await deleteAndCheck(home);
    }
  });

  test('a guest that never finishes provisioning fails with GUEST_READINESS_TIMEOUT and the VM-still-running advice', async () => {
    const home = await homeWithImage();
    const driver = new FakeDriver({ guest: { ready: 'never' } });
    await assert.rejects(
      startCluster(startOptions(home, driver, { marker: 300 })),
      isError('GUEST_READINESS_TIMEOUT', (e) => {
        assert.equal(e.details['vmStillRunning'], true);
        assert.match(e.advice ?? '', /The VM is still running/);
      }),
    );
    assert.equal(lockHeld(home), false);
    // Provisioning finishes on the next boot: start continues.
    await stopCluster({ ...lifecycleOptions(home, new FakeDriver()), timeoutMs: 5000 });
    await startCluster(startOptions(home, new FakeDriver(), { kubernetes: undefined }));
    await runningGuest(home);
    await deleteAndCheck(home);
  });

  test('a VM that dies during the SSH wait fails fast with VM_DIED, the lock is released, and stop and delete work at once', async () => {
    const home = await homeWithImage();
    // The guest never becomes ready, so only the VM watch can end the wait
    // before the 10-minute limit; the VM dies on the watch's third look.
    const driver = new FakeDriver({ guest: { ready: 'never' }, faults: [{ at: 'state:before', nth: 4, action: 'crash-vm' }] });
    const options = { ...startOptions(home, driver), sshTimeouts: { banner: 600_000, command: 600_000, marker: 600_000 } };
    await assert.rejects(
      startCluster(options),
      isError('VM_DIED', (e) => {
        assert.match(e.message, /the VM stopped while devcluster waited for it \(stopped\): the VM's process \d+ is gone/);
        assert.match(e.advice ?? '', /killed \(crash injected at state:before\)/, 'the hypervisor\'s last words are shown');
        assert.match(e.advice ?? '', /Last lines of the guest console/);
        assert.equal(e.details['vmStillRunning'], undefined, 'a dead VM is not said to be running');
      }),
    );
    assert.equal(lockHeld(home), false, 'the lock is released');
    const stopped = await stopCluster({ ...lifecycleOptions(home, new FakeDriver()), timeoutMs: 5000 });
    assert.equal(stopped.wasRunning, false);
    await deleteAndCheck(home);
  });

  test('paused and saved VMs are resumed, not killed or restarted', async () => {
    const home = await homeWithImage();
    const first = await startCluster(startOptions(home, new FakeDriver()));
    const pid = (await hypervisor.vm(home, PROFILE))?.pid;
    await hypervisor.pause(home, PROFILE);
    assert.equal((await clusterStatus(lifecycleOptions(home, new FakeDriver()))).host, 'Paused');
    const paused = new FakeDriver();
    await startCluster(startOptions(home, paused, { kubernetes: undefined }));
    assert.ok(paused.calls().includes('resume'));
    assert.deepEqual(paused.calls().filter((c) => c === 'kill' || c === 'start' || c === 'stop'), []);
    assert.equal((await hypervisor.vm(home, PROFILE))?.pid, pid, 'the same process (its memory) goes on');

    await hypervisor.save(home, PROFILE);
    assert.equal((await clusterStatus(lifecycleOptions(home, new FakeDriver()))).host, 'Saved');
    const saved = new FakeDriver();
    const r = await startCluster(startOptions(home, saved, { kubernetes: undefined }));
    assert.ok(saved.calls().includes('resume'));
    assert.deepEqual(saved.calls().filter((c) => c === 'kill' || c === 'start' || c === 'stop'), []);
    assert.equal(r.ssh.port, first.ssh.port);
    await runningGuest(home);
    await deleteAndCheck(home);
  });

  test('a broken VM (running, hypervisor cannot reach it) is killed and started again', async () => {
    const home = await homeWithImage();
    await startCluster(startOptions(home, new FakeDriver()));
    await hypervisor.markBroken(home, PROFILE);
    const driver = new FakeDriver();
    await startCluster(startOptions(home, driver, { kubernetes: undefined }));
    const calls = driver.calls();
    assert.ok(calls.indexOf('kill') >= 0 && calls.indexOf('kill') < calls.indexOf('start'), calls.join(' '));
    await runningGuest(home);
    await deleteAndCheck(home);
  });

  test('a boot whose console falls silent before SSH answers is reset once; a second stall ends with GUEST_BOOT_STALLED', async () => {
    const home = await homeWithImage();
    const once = startOptions(home, new FakeDriver({ guest: { ready: 'at-boot', stalledBoots: 1 } }));
    await startCluster({ ...once, bootSilenceMs: 1500 });
    assert.equal((await readRegistry(home)).vms[`devcluster-${PROFILE}`]?.boots, 2, 'booted again after the stall');
    assert.match(once.captured.text(), /console printed nothing for [\d.]+ min during boot, before its SSH server answered; resetting the VM once/);
    await runningGuest(home);
    await deleteAndCheck(home);

    const again = await homeWithImage();
    await assert.rejects(startCluster({ ...startOptions(again, new FakeDriver({ guest: { ready: 'at-boot', stalledBoots: 2 } })), bootSilenceMs: 1500 }), isError('GUEST_BOOT_STALLED', (e) => {
      assert.match(e.message, /after 1 reset$/);
      assert.match(e.advice ?? '', /serial\.log|console/);
    }));
    assert.equal((await readRegistry(again)).vms[`devcluster-${PROFILE}`]?.boots, 2, 'reset once, not more');
    await deleteAndCheck(again);
  });

  test('a running guest whose console is quiet is never reset: the watch covers only a boot the start began', async () => {
    const home = await homeWithImage();
    await startCluster(startOptions(home, new FakeDriver()));
    await startCluster({ ...startOptions(home, new FakeDriver()), bootSilenceMs: 1 });
    assert.equal((await readRegistry(home)).vms[`devcluster-${PROFILE}`]?.boots, 1);
    await deleteAndCheck(home);
  });

  test('a routable guest is reached at its own address from the DHCP lease', async () => {
    const home = await homeWithImage();
    const options: FakeDriverOptions = { mode: 'routable', latencyMs: { 'address:before': 30 } };
    const r = await startCluster(startOptions(home, new FakeDriver(options)));
    assert.match(r.guestIp ?? '', /^127\.77\.0\.\d+$/);
    assert.deepEqual(r.ssh, { host: r.guestIp, port: 22, user: 'devcluster' });
    assert.equal((await stateFile(home))?.ip, r.guestIp);
    const s = await clusterStatus(lifecycleOptions(home, new FakeDriver(options)));
    assert.deepEqual([s.guest, s.ip], ['Running', r.guestIp]);
    await deleteAndCheck(home);
  });

  test('Kubernetes whose release servers do not answer is refused before anything is written; a declined build offer changes nothing either', async () => {
    const home = await homeWithImage();
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(req.url ?? '');
      res.writeHead(404).end('no such file');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const flags = Object.fromEntries(['kubernetes', 'containerd', 'runc', 'cni-plugins', 'cri-tools'].map((k) => [`${k}-release-url`, `${base}/${k}`]));
      const before = await snapshotTree(home);
      const driver = new FakeDriver();
      await assert.rejects(startCluster({ ...startOptions(home, driver, { kubernetes: true, flags }), interactive: false }), isError('KUBE_DOWNLOAD_FAILED', (e) => {
        assert.match(e.message, /node bundle is not cached and cannot be downloaded: .*404/);
        assert.match(e.advice ?? '', /devcluster bundle (build --kubernetes-version v\d+\.\d+\.\d+`, then start again|import <dir\|archive>)/);
      }));
      assert.ok(requests.some((u) => u.startsWith('/kubernetes/')), `the checksum was asked for: ${requests.join(' ')}`);
      assert.deepEqual(await snapshotTree(home), before, 'nothing written');
      assert.deepEqual(driver.calls().filter((c) => c !== 'available'), [], 'the driver was not asked to change anything');

      // At a terminal, on a host that can build the bundle, the build is offered; declining it keeps the same refusal.
      const asked: string[] = [];
      const declined = startCluster({ ...startOptions(home, driver, { kubernetes: true, flags }), interactive: true, confirmBuild: async (m) => { asked.push(m); return false; } });
      await assert.rejects(declined, isError('KUBE_DOWNLOAD_FAILED'));
      const { bundleBuildHost, checkBundleBuildHost } = await import('../../src/kube/bundle-build.ts');
      const canBuild = checkBundleBuildHost(await bundleBuildHost()) === undefined;
      assert.deepEqual(asked.map((m) => /Build the v\S+ node bundle here from the Go module proxy/.test(m)), canBuild ? [true] : [], `offered only where the build can run (${String(canBuild)})`);
      assert.deepEqual(await snapshotTree(home), before, 'nothing written after the offer was declined');
    } finally {
      server.close();
    }
  });

  test('validation failures write nothing: the home is byte-for-byte unchanged', async () => {
    const home = await homeWithImage();
    const cases: Array<[string, Record<string, string>, string, FakeDriverOptions?]> = [
      ['cpus', { cpus: '0' }, 'CONFIG_INVALID_VALUE'],
      ['cpus', { cpus: 'many' }, 'CONFIG_INVALID_VALUE'],
      ['image', { image: 'no-such-image' }, 'IMAGE_UNKNOWN'],
      ['elevation', {}, 'HOST_NEEDS_ROOT', { availability: { status: 'needs-elevation', elevation: 'root', reason: 'the fake switch is a host bridge' } }],
    ];
    for (const [what, flags, id, fake] of cases) {
      const before = await snapshotTree(home);
      const driver = new FakeDriver(fake);
      await assert.rejects(startCluster(startOptions(home, driver, { flags })), (e: unknown) => {
        assert.ok(e instanceof DevclusterError, `${what}: ${String(e)}`);
        assert.equal(e.id, id, `${what}: ${e.message}`);
        return true;
      });
      assert.deepEqual(await snapshotTree(home), before, `${what}: nothing written`);
      assert.deepEqual(driver.calls().filter((c) => c !== 'available'), [], `${what}: the driver was not asked to change anything`);
    }
    // Kubernetes offline without a cached node bundle is refused before anything is written, too.
    const before = await snapshotTree(home);
    const driver = new FakeDriver();
    await assert.rejects(startCluster(startOptions(home, driver, { kubernetes: true, flags: { offline: 'true' } })), isError('KUBE_DOWNLOAD_OFFLINE'));
    assert.deepEqual(await snapshotTree(home), before);
    assert.deepEqual(driver.calls(), [], 'the driver was not asked anything');
  });

  test('an --image path that is missing or fails its sha256 writes nothing', {

  }, async () => {
    const home = await homeWithImage();
    const build = await tempDir('devcluster-life-path-');
    const disk = await cleanQcow2(build, 'other.qcow2', '64M');
    const cases: Array<[string, Record<string, string>, string]> = [
      ['missing path', { image: '/nonexistent/disk.qcow2', 'image-sha256': 'a'.repeat(64) }, 'IMAGE_FILE_NOT_FOUND'],
      ['wrong sha256', { image: disk, 'image-sha256': 'b'.repeat(64) }, 'IMAGE_CHECKSUM_MISMATCH'],
    ];
    try {
      for (const [what, flags, id] of cases) {
        const before = await snapshotTree(home);
        await assert.rejects(startCluster(startOptions(home, new FakeDriver(), { flags })), isError(id));
        assert.deepEqual(await snapshotTree(home), before, `${what}: nothing written`);
      }
    } finally {
      await rm(build, { recursive: true, force: true });
    }
  });

  test('a start after an interrupted delete says how to finish the delete, and writes nothing', {

  }, async () => {
    const home = await homeWithImage();
    await startCluster(startOptions(home, new FakeDriver()));
    await assert.rejects(deleteProfile(lifecycleOptions(home, new FakeDriver({ faults: [{ at: 'delete:vm-removed', action: 'throw' }] }))));
    const before = await snapshotTree(home);
    await assert.rejects(startCluster(startOptions(home, new FakeDriver(), { kubernetes: undefined })), (e: unknown) => {
      assert.ok(e instanceof DevclusterError, String(e));
      assert.match(e.advice ?? '', /devcluster delete -p lab/);
      return true;
    });
    assert.deepEqual(await snapshotTree(home), before);
    await deleteAndCheck(home);
  });

  test('start and stop of a profile whose state.json is damaged fail with CONFIG_FILE_CORRUPT, change nothing, and point at delete', async () => {
    const home = await homeWithImage();
    await startCluster(startOptions(home, new FakeDriver()));
    await writeFile(profilePaths(home, PROFILE).state, '{"schemaVersion":1,"prof');
    const before = await snapshotTree(home);
    const advice = /`devcluster delete` still removes this profile/;
    await assert.rejects(startCluster(startOptions(home, new FakeDriver(), { kubernetes: undefined })), isError('CONFIG_FILE_CORRUPT', (e) => assert.match(e.advice ?? '', advice)));
    await assert.rejects(stopCluster({ ...lifecycleOptions(home, new FakeDriver()), timeoutMs: 5000 }), isError('CONFIG_FILE_CORRUPT', (e) => assert.match(e.advice ?? '', advice)));
    const console = (p: string) => p.endsWith('/logs/serial.log');
    assert.deepEqual(Object.entries(await snapshotTree(home)).filter(([p]) => !console(p)), Object.entries(before).filter(([p]) => !console(p)));
    await deleteAndCheck(home);
  });
});

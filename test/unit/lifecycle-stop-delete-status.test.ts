/**
 * stop, delete and status over the fake driver: the state file after each,
 * recovery after a failure at each step of stop and delete, status exit
 * codes (minikube's bitmask) for what is true now, and delete of a profile
 * whose state.json is damaged.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCluster } from '../../src/cluster/start.ts';
import { stopCluster } from '../../src/cluster/stop.ts';
import { deleteProfile } from '../../src/cluster/delete.ts';
import { clusterStatus } from '../../src/cluster/status.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import { snapshotTree } from '../helpers/cli.ts';
import { isError } from '../helpers/errors.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { FakeDriver, INJECTED, POINTS, hypervisor } from '../helpers/fake-driver.ts';
import { fakeHypervisorMissing, guestDir, readRegistry, vmProcessAlive } from '../helpers/fake-hypervisor.ts';
import { NOTHING, PROFILE, homeWithImage, leftovers, lifecycleOptions, removeHomes, startOptions } from '../helpers/lifecycle.ts';
import { assertEverythingRecorded, lockHeld, stateFile } from '../helpers/lifecycle-checks.ts';

const skip = skipUnlessPresent(await fakeHypervisorMissing());

async function runningHome(): Promise<string> {
  const home = await homeWithImage();
  await startCluster(startOptions(home, new FakeDriver()));
  return home;
}

const stop = (home: string, driver = new FakeDriver()) => stopCluster({ ...lifecycleOptions(home, driver, { command: 'stop' }), timeoutMs: 5000 });
const remove = (home: string, driver = new FakeDriver()) => deleteProfile(lifecycleOptions(home, driver, { command: 'delete' }));
const status = (home: string, driver = new FakeDriver()) => clusterStatus(lifecycleOptions(home, driver, { command: 'status' }));

describe('stop over the fake driver', { skip }, () => {
  after(removeHomes);

  test('stop powers the VM off and records Stopped; a second stop asks nothing of the driver', async () => {
    const home = await runningHome();
    const pid = (await hypervisor.vm(home, PROFILE))?.pid;
    const r = await stop(home);
    assert.equal(r.wasRunning, true);
    assert.equal((await stateFile(home))?.status, 'Stopped');
    const vm = await hypervisor.vm(home, PROFILE);
    assert.equal(vm?.power, 'stopped');
    assert.equal(vmProcessAlive({ pid, startTime: vm?.startTime }), false);
    assert.equal(lockHeld(home), false);
    const again = new FakeDriver();
    assert.equal((await stop(home, again)).wasRunning, false);
    assert.deepEqual(again.calls(), ['state']);
    assert.equal((await stateFile(home))?.status, 'Stopped');
  });

  test('stop asks the guest to power itself off over SSH first, once it proved to be this VM; the driver then finishes', async () => {
    const home = await runningHome();
    const r = await stopCluster({ ...lifecycleOptions(home, new FakeDriver(), { command: 'stop' }), timeoutMs: 10_000 });
    assert.equal(r.shutdownBy, 'guest');
    const requests = join(guestDir(home, `devcluster-${PROFILE}`), 'var-lib', 'poweroff-requests');
    assert.match(await readFile(requests, 'utf8'), /^fake guest: powering off\n$/, 'systemctl poweroff ran once in the guest');
    assert.equal((await hypervisor.vm(home, PROFILE))?.power, 'stopped');
    assert.equal((await stateFile(home))?.status, 'Stopped');
  });

  test('a machine at the address that shows another cloud-init instance id is never powered off: the driver stops the VM', async () => {
    const home = await homeWithImage();
    const foreign = { guest: { ready: 'at-boot' as const, instance: 'foreign' as const } };
    await startCluster(startOptions(home, new FakeDriver(foreign)));
    const r = await stopCluster({ ...lifecycleOptions(home, new FakeDriver(foreign), { command: 'stop' }), timeoutMs: 10_000 });
    assert.equal(r.shutdownBy, 'driver');
    assert.equal(existsSync(join(guestDir(home, `devcluster-${PROFILE}`), 'var-lib', 'poweroff-requests')), false, 'no poweroff was asked for');
    assert.equal((await hypervisor.vm(home, PROFILE))?.power, 'stopped');
  });

  for (const at of POINTS.stop) {
    test(`a failure at ${at}: the lock is free and the next stop finishes`, async () => {
      const home = await runningHome();
      await assert.rejects(stop(home, new FakeDriver({ faults: [{ at, action: 'throw' }] })), new RegExp(`${INJECTED} ${at}`));
      assert.equal(lockHeld(home), false);
      assert.equal((await stateFile(home))?.status, 'Stopping', 'the state says a stop was under way');
      await stop(home);
      assert.equal((await stateFile(home))?.status, 'Stopped');
      assert.equal((await status(home)).host, 'Stopped');
      await remove(home);
      assert.deepEqual(await leftovers(home), NOTHING);
    });
  }

  test('stop of a profile that does not exist changes nothing', async () => {
    const home = await homeWithImage();
    const before = await snapshotTree(home);
    await assert.rejects(stop(home), isError('PROFILE_NOT_FOUND'));
    assert.deepEqual(await snapshotTree(home), before);
  });
});

describe('delete over the fake driver', { skip }, () => {
  after(removeHomes);

  test('delete of a running profile leaves nothing: no VM, process, switch, file, lock or staging file', async () => {
    const home = await runningHome();
    const r = await remove(home);
    assert.equal(r.existed, true);
    assert.ok(r.removed.some((x) => x === `fake-vm devcluster-${PROFILE}`), r.removed.join(', '));
    assert.deepEqual(await leftovers(home), NOTHING);
    assert.deepEqual(await readRegistry(home), { switches: {}, vms: {} }, 'the hypervisor holds nothing');
  });

  for (const at of POINTS.delete) {
    test(`a failure at ${at}: what is left is still recorded, and the next delete removes it`, async () => {
      const home = await runningHome();
      await assert.rejects(remove(home, new FakeDriver({ faults: [{ at, action: 'throw' }] })), new RegExp(`${INJECTED} ${at}`));
      assert.equal(lockHeld(home), false);
      assert.equal((await stateFile(home))?.status, 'Deleting');
      await assertEverythingRecorded(home);
      await remove(home);
      assert.deepEqual(await leftovers(home), NOTHING);
    });
  }

  for (const [damage, corrupt] of [
    ['truncated', async (path: string) => truncate(path, 40)],
    ['empty', async (path: string) => writeFile(path, '')],
    ['not JSON', async (path: string) => writeFile(path, '\u0000\u0000garbage{')],
  ] as const) {
    test(`delete of a profile whose state.json is ${damage} removes the VM (per the hypervisor) and the directory`, async () => {
      const home = await runningHome();
      const vm = await hypervisor.vm(home, PROFILE);
      assert.ok(vm !== undefined && vmProcessAlive(vm));
      await corrupt(profilePaths(home, PROFILE).state);
      const s = await status(home);
      assert.deepEqual([s.host, s.exitCode], ['Unknown', 7]);
      assert.match(s.problem ?? '', /damaged|cannot read/);
      const r = await remove(home);
      assert.equal(r.existed, true);
      assert.equal(r.unverified, undefined, JSON.stringify(r.unverified));
      assert.equal(vmProcessAlive(vm), false, 'the VM process is gone');
      assert.deepEqual(await leftovers(home), NOTHING);
      assert.deepEqual((await readRegistry(home)).vms, {}, 'the hypervisor no longer lists the VM');
    });
  }

  test('delete of a profile that does not exist changes nothing', async () => {
    const home = await homeWithImage();
    const before = await snapshotTree(home);
    await assert.rejects(remove(home), isError('PROFILE_NOT_FOUND'));
    assert.deepEqual(await snapshotTree(home), before);
  });
});

describe('status over the fake driver', { skip }, () => {
  after(removeHomes);

  test('exit codes say what is true now: running 0, guest unreachable 2, stopped 3, crashed 3, paused 3, nonexistent 7', async () => {
    const home = await runningHome();
    const running = await status(home);
    assert.deepEqual([running.host, running.guest, running.kubelet, running.exitCode], ['Running', 'Running', 'Irrelevant', 0]);
    assert.equal(running.ssh?.host, '127.0.0.1');

    await hypervisor.hangGuest(home, PROFILE);
    const hung = await status(home);
    assert.deepEqual([hung.host, hung.guest, hung.exitCode], ['Running', 'Unreachable', 2]);

    await stop(home);
    const stopped = await status(home);
    assert.deepEqual([stopped.host, stopped.guest, stopped.exitCode], ['Stopped', 'Stopped', 3]);

    await startCluster(startOptions(home, new FakeDriver(), { kubernetes: undefined }));
    await hypervisor.crash(home, PROFILE);
    assert.equal((await stateFile(home))?.status, 'Running', 'the state file still says Running');
    const crashed = await status(home);
    assert.deepEqual([crashed.host, crashed.exitCode], ['Stopped', 3]);

    await startCluster(startOptions(home, new FakeDriver(), { kubernetes: undefined }));
    await hypervisor.pause(home, PROFILE);
    const paused = await status(home);
    assert.deepEqual([paused.host, paused.exitCode], ['Paused', 3]);

    await remove(home);
    const gone = await status(home);
    assert.deepEqual([gone.host, gone.exitCode], ['Nonexistent', 7]);
    assert.deepEqual(await leftovers(home), NOTHING);
  });

  test('status changes nothing on disk', async () => {
    const home = await runningHome();
    // The guest's console (its sshd logs the status probe) is the guest's to write.
    const devclusterFiles = async () => Object.fromEntries(Object.entries(await snapshotTree(home)).filter(([p]) => !p.endsWith('/logs/serial.log')));
    const before = await devclusterFiles();
    await status(home);
    assert.deepEqual(await devclusterFiles(), before);
    assert.ok((await readFile(profilePaths(home, PROFILE).state, 'utf8')).includes('"Running"'));
  });
});

/**
 * Fault injection across processes (issue #14): a crash (process.exit in
 * the middle of a step) and a SIGKILL at every step of start, stop and
 * delete, each in a worker process running the real lifecycle over the fake
 * driver. After each: everything that exists on the host is recorded in
 * state.json, the next command recovers (taking over the dead process's
 * lock), and delete leaves nothing: no VM, process, switch, profile file,
 * lock or staging file.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startCluster } from '../../src/cluster/start.ts';
import { stopCluster } from '../../src/cluster/stop.ts';
import { deleteProfile } from '../../src/cluster/delete.ts';
import { clusterStatus } from '../../src/cluster/status.ts';
import { REPO } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { CRASH_EXIT_CODE, FakeDriver } from '../helpers/fake-driver.ts';
import type { Fault } from '../helpers/fake-driver.ts';
import { fakeHypervisorMissing, readRegistry, vmProcessAlive } from '../helpers/fake-hypervisor.ts';
import { NOTHING, PROFILE, homeWithImage, leftovers, lifecycleOptions, removeHomes, startOptions } from '../helpers/lifecycle.ts';
import { assertEverythingRecorded, lockHeld, stateFile } from '../helpers/lifecycle-checks.ts';
import type { WorkerJob } from '../helpers/lifecycle-worker.ts';

const skip = skipUnlessPresent(await fakeHypervisorMissing());
const WORKER = join(REPO, 'test', 'helpers', 'lifecycle-worker.ts');

type Fate = 'exit' | 'kill';

/** Runs the worker with a fault at `at`; resolves once it crashed ('exit') or was SIGKILLed there ('kill'). */
function crashWorker(job: WorkerJob, at: string, fate: Fate, nth = 1): Promise<void> {
  const fault: Fault = { at, nth, action: fate === 'exit' ? 'exit' : 'hang' };
  const child = spawn(process.execPath, [WORKER, JSON.stringify({ ...job, fake: { ...job.fake, faults: [fault] } })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (fate === 'kill' && stdout.includes(`REACHED ${at}\n`)) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const expected = fate === 'exit' ? code === CRASH_EXIT_CODE && stdout.includes(`EXIT ${at}\n`) : signal === 'SIGKILL';
      if (expected) resolve();
      else reject(new Error(`the worker did not ${fate} at ${at} (code ${code}, signal ${signal}):\n${stdout}\n${stderr}`));
    });
  });
}

async function assertAfterCrash(home: string): Promise<void> {
  await assertEverythingRecorded(home);
  // The crashed process could not release its lock: the next command must take it over.
  assert.equal(lockHeld(home), true, 'the dead process\'s lock is still there');
}

async function assertRunning(home: string): Promise<void> {
  const vms = Object.values((await readRegistry(home)).vms);
  assert.equal(vms.length, 1, 'one VM, not two');
  assert.ok(vmProcessAlive(vms[0] as { pid?: number; startTime?: string }), 'the VM runs');
  const s = await clusterStatus(lifecycleOptions(home, new FakeDriver()));
  assert.deepEqual([s.host, s.guest, s.exitCode], ['Running', 'Running', 0]);
  assert.equal((await stateFile(home))?.status, 'Running');
}

async function deleteLeavesNothing(home: string): Promise<void> {
  await deleteProfile(lifecycleOptions(home, new FakeDriver(), { command: 'delete' }));
  assert.deepEqual(await leftovers(home), NOTHING);
  assert.deepEqual(await readRegistry(home), { switches: {}, vms: {} });
}

const START_POINTS: Array<[string, number?]> = [
  ['state:before'],
  ['ensureNetwork:before'],
  ['ensureNetwork:recorded'],
  ['ensureNetwork:after'],
  ['create:before'],
  ['create:recorded'],
  ['create:disk-staged'],
  ['create:after'],
  ['start:before'],
  ['start:recorded'],
  ['start:after'],
  ['address:before'],
  // The VM watch's second look during the SSH wait.
  ['state:before', 3],
];

describe('a crash or SIGKILL at every step of start', { skip, concurrency: 3 }, () => {
  after(removeHomes);
  for (const [at, nth] of START_POINTS) {
    const where = nth === undefined ? at : `${at} (call ${nth})`;
    test(`crash at ${where}: the next start continues, one VM runs, delete leaves nothing`, async () => {
      const home = await homeWithImage();
      await crashWorker({ command: 'start', home }, at, 'exit', nth);
      await assertAfterCrash(home);
      await startCluster(startOptions(home, new FakeDriver()));
      await assertRunning(home);
      await deleteLeavesNothing(home);
    });
    test(`SIGKILL at ${where}: delete right after removes everything`, async () => {
      const home = await homeWithImage();
      await crashWorker({ command: 'start', home }, at, 'kill', nth);
      await assertAfterCrash(home);
      await deleteLeavesNothing(home);
    });
  }
});

const STOP_POINTS = ['state:before', 'stop:before', 'stop:guest-down', 'stop:after'];

describe('a crash or SIGKILL at every step of stop', { skip, concurrency: 3 }, () => {
  after(removeHomes);
  for (const at of STOP_POINTS) {
    for (const fate of ['exit', 'kill'] as const) {
      test(`${fate} at ${at}: the next stop finishes, the next start runs the VM, delete leaves nothing`, async () => {
        const home = await homeWithImage();
        await startCluster(startOptions(home, new FakeDriver()));
        await crashWorker({ command: 'stop', home }, at, fate);
        await assertAfterCrash(home);
        const stopped = await stopCluster({ ...lifecycleOptions(home, new FakeDriver(), { command: 'stop' }), timeoutMs: 5000 });
        assert.equal(stopped.profile, PROFILE);
        assert.equal((await stateFile(home))?.status, 'Stopped');
        await startCluster(startOptions(home, new FakeDriver(), { kubernetes: undefined }));
        await assertRunning(home);
        await deleteLeavesNothing(home);
      });
    }
  }
});

const DELETE_POINTS = ['delete:before', 'delete:vm-removed', 'delete:after'];

describe('a crash or SIGKILL at every step of delete', { skip, concurrency: 3 }, () => {
  after(removeHomes);
  for (const at of DELETE_POINTS) {
    for (const fate of ['exit', 'kill'] as const) {
      test(`${fate} at ${at}: the next delete leaves nothing`, async () => {
        const home = await homeWithImage();
        await startCluster(startOptions(home, new FakeDriver()));
        await crashWorker({ command: 'delete', home }, at, fate);
        await assertAfterCrash(home);
        assert.equal((await stateFile(home))?.status, 'Deleting');
        await deleteLeavesNothing(home);
      });
    }
  }
});

describe('a VM started by a killed start is adopted, not doubled', { skip }, () => {
  after(removeHomes);
  test('SIGKILL while waiting for SSH, then start: the same VM process serves the guest', async () => {
    const home = await homeWithImage();
    await crashWorker({ command: 'start', home }, 'address:before', 'kill');
    const pid = Object.values((await readRegistry(home)).vms)[0]?.pid;
    assert.ok(pid !== undefined);
    const driver = new FakeDriver();
    const r = await startCluster(startOptions(home, driver));
    assert.equal(r.alreadyRunning, true);
    assert.deepEqual(driver.calls().filter((c) => c === 'start' || c === 'kill' || c === 'create'), []);
    assert.equal(Object.values((await readRegistry(home)).vms)[0]?.pid, pid);
    await deleteLeavesNothing(home);
  });
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI } from '../helpers/cli.ts';
import { E2E_HOME, VM_FLAGS, e2e, ensureDebianImage, requireRootAndQemu } from './guest.ts';

const PROFILE = 'e2e-life';
const profileDir = join(E2E_HOME, 'profiles', PROFILE);
const skip = requireRootAndQemu();

/** QEMU processes whose command line names this profile's directory. */
function qemuProcessesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('qemu-system') && cmdline.includes(dir)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

before(async () => {
  if (skip !== false) return;
  await ensureDebianImage();
  await e2e(['delete', '-p', PROFILE]);
});

after(async () => {
  if (skip !== false) return;
  await e2e(['delete', '-p', PROFILE]);
  await e2e(['delete', '-p', `${PROFILE}-kill`]);
  await e2e(['delete', '-p', `${PROFILE}-crash`]);
});

test('start, ssh, stop, start again with the same disk and host key, delete leaves nothing', { skip, timeout: 30 * 60_000 }, async () => {
  const started = await e2e(['start', '-p', PROFILE, ...VM_FLAGS]);
  assert.equal(started.code, 0, `${started.stdout}\n${started.stderr}`);
  assert.match(started.stdout, /Using the qemu driver/);

  const hostname = await e2e(['ssh', '-p', PROFILE, '--', 'hostname']);
  assert.equal(hostname.code, 0, hostname.stderr);
  assert.equal(hostname.stdout.trim(), PROFILE);
  const cloudInit = await e2e(['ssh', '-p', PROFILE, '--', 'cloud-init', 'status']);
  assert.match(cloudInit.stdout, /status: done/);
  const remoteExit = await e2e(['ssh', '-p', PROFILE, '--', 'sh', '-c', "'exit 7'"]);
  assert.equal(remoteExit.code, 7, 'devcluster ssh returns the remote exit code');
  assert.equal((await e2e(['ssh', '-p', PROFILE, '--', 'sh', '-c', "'echo kept > ~/before-stop && sync'"])).code, 0);

  const status = await e2e(['status', '-p', PROFILE, '-o', 'json']);
  assert.equal(status.code, 0);
  const doc = JSON.parse(status.stdout) as { host: string; guest: string };
  assert.equal(doc.host, 'Running');
  assert.equal(doc.guest, 'Running');
  const knownHosts = await readFile(join(profileDir, 'keys', 'known_hosts'), 'utf8');

  // Starting a running cluster changes nothing and says so.
  const again = await e2e(['start', '-p', PROFILE, ...VM_FLAGS]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /already running/);
  assert.equal(qemuProcessesOf(profileDir).length, 1);

  const stopped = await e2e(['stop', '-p', PROFILE]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, /stopped in [\d.]+s \(the guest shut itself down\)/, 'the guest powered off over SSH before the driver stopped it');
  assert.deepEqual(qemuProcessesOf(profileDir), []);
  const stoppedStatus = await e2e(['status', '-p', PROFILE, '-o', 'json']);
  assert.equal(stoppedStatus.code & 1, 1, 'status exit code has the host bit');
  assert.equal((JSON.parse(stoppedStatus.stdout) as { host: string }).host, 'Stopped');

  // The profile remembers it was made without Kubernetes: no flag needs repeating.
  const restarted = await e2e(['start', '-p', PROFILE]);
  assert.equal(restarted.code, 0, `${restarted.stdout}\n${restarted.stderr}`);
  assert.equal(await readFile(join(profileDir, 'keys', 'known_hosts'), 'utf8'), knownHosts, 'the pinned host key did not change');
  const kept = await e2e(['ssh', '-p', PROFILE, '--', 'cat', '~/before-stop']);
  assert.equal(kept.stdout.trim(), 'kept', 'a file written before the stop is still there');
  // Behind user-mode NAT the host reaches the guest on 127.0.0.1 through forwarded ports.
  const ip = await e2e(['ip', '-p', PROFILE, '-o', 'json']);
  const ipDoc = JSON.parse(ip.stdout) as { ip: string | null; host: string; ssh: { host: string; port: number }; forwards: Array<{ guestPort: number; port: number }> };
  assert.equal(ipDoc.ip, null);
  assert.equal(ipDoc.host, '127.0.0.1');
  assert.deepEqual(ipDoc.forwards.map((f) => f.guestPort), [22]);
  assert.equal(ipDoc.forwards[0]?.port, ipDoc.ssh.port);
  assert.equal((await e2e(['ip', '-p', PROFILE])).stdout.trim(), '127.0.0.1');

  const deleted = await e2e(['delete', '-p', PROFILE]);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.deepEqual(qemuProcessesOf(profileDir), []);
  assert.equal(existsSync(profileDir), false, 'no files are left under the profile');
  const gone = await e2e(['status', '-p', PROFILE, '-o', 'json']);
  assert.equal((JSON.parse(gone.stdout) as { host: string }).host, 'Nonexistent');
});

test('kill -9 of devcluster during start, then start again succeeds', { skip, timeout: 30 * 60_000 }, async () => {
  const profile = `${PROFILE}-kill`;
  const dir = join(E2E_HOME, 'profiles', profile);
  const child = spawn(process.execPath, [CLI, 'start', '-p', profile, ...VM_FLAGS], {
    env: { ...process.env, DEVCLUSTER_HOME: E2E_HOME, CI: 'true', NO_COLOR: '1' },
    stdio: 'ignore',
  });
  // Kill it once QEMU is up, while it waits for SSH: the worst moment.
  const deadline = Date.now() + 5 * 60_000;
  while (qemuProcessesOf(dir).length === 0 && Date.now() < deadline) await sleep(200);
  assert.ok(qemuProcessesOf(dir).length > 0, 'QEMU never started');
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));

  const resumed = await e2e(['start', '-p', profile, ...VM_FLAGS]);
  assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
  assert.equal(qemuProcessesOf(dir).length, 1, 'the VM started by the killed run is reused, not doubled');
  const hostname = await e2e(['ssh', '-p', profile, '--', 'hostname']);
  assert.equal(hostname.stdout.trim(), profile);

  // A truncated state file: status says so, delete still stops the VM and removes every file.
  const statePath = join(dir, 'state.json');
  await writeFile(statePath, (await readFile(statePath, 'utf8')).slice(0, 40));
  const status = await e2e(['status', '-p', profile, '-o', 'json']);
  assert.notEqual(status.code, 0);
  assert.match((JSON.parse(status.stdout) as { problem: string }).problem, /damaged/);
  const deleted = await e2e(['delete', '-p', profile]);
  assert.equal(deleted.code, 0, `${deleted.stdout}\n${deleted.stderr}`);
  assert.deepEqual(qemuProcessesOf(dir), [], 'the VM of a profile with a damaged state is stopped');
  assert.equal(existsSync(dir), false);
});

test('QEMU killed while start waits for SSH: start fails within seconds with the cause, the lock is free, delete is clean', { skip, timeout: 30 * 60_000 }, async () => {
  const profile = `${PROFILE}-crash`;
  const dir = join(E2E_HOME, 'profiles', profile);
  const child = spawn(process.execPath, [CLI, 'start', '-p', profile, ...VM_FLAGS], {
    env: { ...process.env, DEVCLUSTER_HOME: E2E_HOME, CI: 'true', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Kill QEMU once the start step is done, so start is in its SSH wait.
  const deadline = Date.now() + 5 * 60_000;
  while (!/Starting the VM/.test(output) && Date.now() < deadline) await sleep(200);
  const [pid] = qemuProcessesOf(dir);
  assert.ok(pid !== undefined, `QEMU is not running after the start step:\n${output}`);
  process.kill(pid, 'SIGKILL');
  // The SSH banner stage alone would wait 10 minutes; the VM watch must end it long before the test's timeout.
  const code = await exited;
  assert.equal(code, 67, output);
  assert.match(output, /VM_DIED/);
  assert.match(output, /QEMU process is gone/);
  assert.ok(!existsSync(join(dir, 'lock.json')), 'the profile lock is released');
  const status = await e2e(['status', '-p', profile, '-o', 'json']);
  assert.equal((JSON.parse(status.stdout) as { host: string }).host, 'Stopped');
  const deleted = await e2e(['delete', '-p', profile]);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(existsSync(dir), false);
});

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSupportBundle } from '../../src/doctor/bundle.ts';
import { createDoctorContext } from '../../src/doctor/context.ts';
import { sshGuestAccessor } from '../../src/cluster/doctor-guest.ts';
import { ensureProfileKeys } from '../../src/ssh/keys.ts';
import type { ProfileKeys } from '../../src/ssh/keys.ts';
import { runChecks } from '../../src/doctor/runner.ts';
import { tempDir } from '../helpers/cli.ts';
import { testContext } from '../helpers/doctor.ts';
import { sshdMissing, startSshd } from './ssh-server.ts';
import type { SshServer } from './ssh-server.ts';

/** The doctor's guest checks over a real SSH connection to a real sshd on 127.0.0.1. */
// Under CI a missing sshd fails the suite (sshdMissing throws) instead of skipping it.
describe('guest checks over SSH', { skip: sshdMissing() }, () => {
  let keys: ProfileKeys;
  let other: ProfileKeys;
  let server: SshServer;

  before(async () => {
    const dir = await tempDir('devcluster-doctor-ssh-');
    keys = await ensureProfileKeys(join(dir, 'keys'));
    other = await ensureProfileKeys(join(dir, 'other'));
    server = await startSshd({ hostKeyPath: keys.hostPrivateKeyPath, authorizedKeys: `${keys.clientPublicKey}\n` });
  });
  after(async () => {
    await server.stop();
  });

  const running = { exists: true, running: true, state: 'running' } as const;

  test('SSH with the pinned key passes and the clock agrees with the host', async () => {
    const guest = sshGuestAccessor({ host: server.host, port: server.port, user: server.user, privateKeyPath: keys.clientPrivateKeyPath, expectedHostKey: keys.hostPublicKey });
    try {
      const results = await runChecks(testContext({ cluster: running, guest }), { only: ['GUEST_SSH_DOWN', 'HOST_CLOCK_SKEW'] });
      assert.deepEqual(results.map((r) => [r.id, r.status]), [['HOST_CLOCK_SKEW', 'pass'], ['GUEST_SSH_DOWN', 'pass']]);
      assert.match(results[0]?.summary ?? '', /^the guest clock is \d+\.\ds (ahead of|behind) the host$/);
      assert.equal(results[1]?.summary, `${server.user}@${server.host}:${server.port} answers with the pinned host key`);
    } finally {
      guest.close?.();
    }
  });

  test('the support bundle reads the guest journals over SSH as root (sudo -n, or without sudo where the guest has none)', async () => {
    const home = join(await tempDir('devcluster-doctor-ssh-bundle-'), 'home');
    await mkdir(join(home, 'profiles', 'devcluster'), { recursive: true });
    await writeFile(join(home, 'profiles', 'devcluster', 'state.json'), JSON.stringify({ schemaVersion: 1, profile: 'devcluster', driver: 'qemu', status: 'Running', created: { cpus: 2, memoryMiB: 2048, diskMiB: 20480, image: 'debian-12', kubernetes: false }, resources: [], driverData: {} }));
    const guest = sshGuestAccessor({ host: server.host, port: server.port, user: server.user, privateKeyPath: keys.clientPrivateKeyPath, expectedHostKey: keys.hostPublicKey });
    try {
      const ctx = await createDoctorContext({ home, env: { HOME: home }, guest, vm: null });
      const path = await createSupportBundle(ctx, { outputPath: join(home, 'b.zip') });
      const C_LOCALE = { ...process.env, LANG: 'C', LC_ALL: 'C' };
      const names = execFileSync('unzip', ['-Z1', path], { encoding: 'utf8', env: C_LOCALE }).trim().split('\n');
      assert.ok(names.includes('guest/boot.journal.txt') && names.includes('guest/containerd.journal.txt'), names.join(', '));
      assert.ok(!names.includes('guest/kubelet.journal.txt'), 'no kubelet journal without Kubernetes');
      const boot = execFileSync('unzip', ['-p', path, 'guest/boot.journal.txt'], { encoding: 'utf8', env: C_LOCALE });
      // The sshd here runs the tests' own user's commands: sudo is used when this machine has it.
      const sudo = ['/usr/bin/sudo', '/bin/sudo'].some((p) => existsSync(p));
      if (sudo) assert.doesNotMatch(boot, /^\(sudo -n failed/);
      else assert.match(boot, /^\(sudo -n failed in the guest: .*sudo.*; read without it/);
      // What journalctl itself printed: entries, or its own word that there are none.
      assert.match(boot, /-- No entries --|No journal files were found|\S+\[\d+\]: /);
    } finally {
      guest.close?.();
    }
  });

  test('a host key that is not the pinned one fails the SSH check', async () => {
    const guest = sshGuestAccessor({ host: server.host, port: server.port, user: server.user, privateKeyPath: keys.clientPrivateKeyPath, expectedHostKey: other.hostPublicKey });
    try {
      const [r] = await runChecks(testContext({ cluster: running, guest }), { only: ['GUEST_SSH_DOWN'] });
      assert.equal(r?.status, 'fail');
      assert.match(r?.summary ?? '', /^SSH to \S+ fails: /);
      assert.equal(r?.exitCode, 89);
    } finally {
      guest.close?.();
    }
  });
});

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sshGuestAccessor } from '../../src/cluster/doctor-guest.ts';
import { ensureProfileKeys } from '../../src/ssh/keys.ts';
import type { ProfileKeys } from '../../src/ssh/keys.ts';
import { runChecks } from '../../src/doctor/runner.ts';
import { tempDir } from '../helpers/cli.ts';
import { testContext } from '../helpers/doctor.ts';
import { sshdMissing, startSshd } from './ssh-server.ts';
import type { SshServer } from './ssh-server.ts';

/** The doctor's guest checks over a real SSH connection to a real sshd on 127.0.0.1. */
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

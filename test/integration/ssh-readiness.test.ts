import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { tempDir } from '../helpers/cli.ts';
import { ensureProfileKeys } from '../../src/ssh/keys.ts';
import type { ProfileKeys } from '../../src/ssh/keys.ts';
import { probeSshBanner, waitForSsh } from '../../src/ssh/readiness.ts';
import type { ReadinessStage, WaitForSshOptions } from '../../src/ssh/readiness.ts';
import { freePort, HOST, sshdMissing, startSilentListener, startSshd } from './ssh-server.ts';
import type { SilentListener, SshServer } from './ssh-server.ts';
import { isError } from '../helpers/errors.ts';

const skip = sshdMissing();


/** Resolves when the progress callback has reported `stage` attempt `attempt`. */
function progressWatcher(): {
  onProgress: NonNullable<WaitForSshOptions['onProgress']>;
  reached(stage: ReadinessStage, attempt: number): Promise<void>;
  stages(): ReadinessStage[];
} {
  const seen: Array<{ stage: ReadinessStage; attempt: number }> = [];
  const waiters: Array<{ stage: ReadinessStage; attempt: number; resolve: () => void }> = [];
  return {
    onProgress(stage, elapsedMs, progress) {
      assert.ok(elapsedMs >= 0);
      seen.push({ stage, attempt: progress.attempt });
      for (const w of [...waiters]) {
        if (w.stage === stage && progress.attempt >= w.attempt) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    },
    reached(stage, attempt) {
      if (seen.some((s) => s.stage === stage && s.attempt >= attempt)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ stage, attempt, resolve }));
    },
    stages: () => [...new Set(seen.map((s) => s.stage))],
  };
}

/**
 * Waits until `reached` resolves, failing at once if the wait under test ends
 * first: a wait that finished early (a stale marker taken for ready) must fail
 * the test, not leave it waiting for progress that never comes.
 */
async function reachedWhileWaiting(waiting: Promise<unknown>, reached: Promise<void>, what: string): Promise<void> {
  const ended = waiting.then(() => 'ended' as const, () => 'failed' as const);
  const outcome = await Promise.race([reached.then(() => 'reached' as const), ended]);
  if (outcome !== 'reached') assert.fail(`the wait ${outcome} before ${what}`);
}

describe('waitForSsh against a real sshd', { skip }, () => {
  let dir: string;
  let keys: ProfileKeys;
  const servers: SshServer[] = [];
  const listeners: SilentListener[] = [];
  const serialLog = '/var/devcluster/profiles/demo/logs/serial.log';

  before(async () => {
    dir = await tempDir('devcluster-ssh-readiness-');
    keys = await ensureProfileKeys(join(dir, 'keys'));
  });

  after(async () => {
    for (const l of listeners) await l.close();
    for (const s of servers) await s.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function sshd(port?: number, hostKeyPath = keys.hostPrivateKeyPath): Promise<SshServer> {
    const s = await startSshd({ hostKeyPath, authorizedKeys: `${keys.clientPublicKey}\n`, ...(port === undefined ? {} : { port }) });
    servers.push(s);
    return s;
  }

  async function silent(port?: number, greeting?: string): Promise<SilentListener> {
    const l = await startSilentListener(port, greeting);
    listeners.push(l);
    return l;
  }

  function options(port: number, marker: string, extra: Partial<WaitForSshOptions> = {}): WaitForSshOptions {
    return {
      host: HOST,
      port,
      username: userInfo().username,
      privateKeyPath: keys.clientPrivateKeyPath,
      expectedHostKey: keys.hostPublicKey,
      marker,
      timeouts: { banner: 120_000, command: 60_000, marker: 60_000 },
      pollMs: 50,
      probeTimeoutMs: 300,
      hint: { serialLog },
      ...extra,
    };
  }

  test('waits through a port that accepts but does not greet, then for login, then for the marker', async () => {
    const listener = await silent();
    const port = listener.port;
    const marker = join(dir, 'ready-1');
    const watch = progressWatcher();
    const waiting = waitForSsh(options(port, marker, { onProgress: watch.onProgress }));

    // Stage 1 keeps probing while the port accepts and stays silent (QEMU slirp before sshd).
    await reachedWhileWaiting(waiting, listener.waitForConnections(3), 'three silent connections');
    await reachedWhileWaiting(waiting, watch.reached('banner', 3), 'banner attempt 3');
    await listener.close();
    await sshd(port);

    // Stage 3 keeps checking while the marker is missing.
    await reachedWhileWaiting(waiting, watch.reached('marker', 3), 'marker attempt 3');
    await writeFile(marker, '');
    const result = await waiting;

    assert.match(result.banner, /^SSH-2\.0-OpenSSH/);
    for (const ms of [result.bannerMs, result.commandMs, result.markerMs]) assert.ok(Number.isInteger(ms) && ms >= 0);
    assert.equal(result.totalMs >= result.bannerMs, true);
    assert.deepEqual(watch.stages(), ['banner', 'command', 'marker']);
  });

  test('a silent port fails the banner stage with GUEST_SSH_BANNER_TIMEOUT pointing at the serial log', async () => {
    const listener = await silent();
    await assert.rejects(
      waitForSsh(options(listener.port, join(dir, 'never'), { timeouts: { banner: 1000, command: 60_000, marker: 60_000 } })),
      isError('GUEST_SSH_BANNER_TIMEOUT', (e) => {
        assert.equal(e.exitCode, 81);
        assert.match(e.message, /No SSH server answered/);
        assert.ok(e.advice?.includes('did not start sshd'), e.advice);
        assert.ok(e.advice?.includes(serialLog), e.advice);
        assert.equal(e.details['stage'], 'banner');
      }),
    );
    assert.ok(listener.accepted() >= 1);
  });

  test('a closed port fails the banner stage saying nothing listens', async () => {
    const port = await freePort();
    await assert.rejects(
      waitForSsh(options(port, join(dir, 'never'), { timeouts: { banner: 500, command: 60_000, marker: 60_000 }, hint: { serialLog, extra: 'Is the VM running?' } })),
      isError('GUEST_SSH_BANNER_TIMEOUT', (e) => {
        assert.match(e.message, /Nothing accepted connections/);
        assert.ok(e.advice?.includes(serialLog));
        assert.ok(e.advice?.endsWith('Is the VM running?'));
      }),
    );
  });

  test('another protocol on the port is named in the banner error', async () => {
    const listener = await silent(undefined, 'HTTP/1.1 400 Bad Request\r\n\r\n');
    assert.deepEqual(await probeSshBanner(HOST, listener.port, 5000), {
      ok: false,
      kind: 'not-ssh',
      message: 'something other than an SSH server answered ("HTTP/1.1 400 Bad Request?")',
    });
    await assert.rejects(
      waitForSsh(options(listener.port, join(dir, 'never'), { timeouts: { banner: 500, command: 60_000, marker: 60_000 } })),
      isError('GUEST_SSH_BANNER_TIMEOUT', (e) => assert.match(e.advice ?? '', /Another program uses port/)),
    );
  });

  test('the marker stage times out with GUEST_READINESS_TIMEOUT', async () => {
    const server = await sshd();
    await assert.rejects(
      waitForSsh(options(server.port, join(dir, 'never-ready'), { timeouts: { banner: 60_000, command: 60_000, marker: 800 } })),
      isError('GUEST_READINESS_TIMEOUT', (e) => {
        assert.equal(e.exitCode, 85);
        assert.ok(e.message.includes('never-ready does not exist'), e.message);
        assert.ok(e.advice?.includes(serialLog));
        assert.match(e.advice ?? '', /cloud-init status --long/);
      }),
    );
  });

  test('with markerContent a stale marker from another boot does not count', async () => {
    const server = servers[servers.length - 1] ?? (await sshd());
    const marker = join(dir, 'ready-nonce');
    await writeFile(marker, 'boot-1\n');
    const watch = progressWatcher();
    const waiting = waitForSsh(options(server.port, marker, { markerContent: 'boot-2', onProgress: watch.onProgress }));
    await reachedWhileWaiting(waiting, watch.reached('marker', 3), 'marker attempt 3 (the stale marker counted)');
    await writeFile(marker, 'boot-2\n');
    await waiting;
  });

  test('a key the guest refuses fails the command stage with GUEST_SSH_AUTH_FAILED', async () => {
    const server = servers[servers.length - 1] ?? (await sshd());
    const stranger = await ensureProfileKeys(join(dir, 'stranger'));
    await assert.rejects(
      waitForSsh(options(server.port, join(dir, 'x'), { privateKeyPath: stranger.clientPrivateKeyPath, timeouts: { banner: 60_000, command: 800, marker: 60_000 } })),
      isError('GUEST_SSH_AUTH_FAILED', (e) => {
        assert.equal(e.exitCode, 82);
        assert.ok(e.advice?.includes(serialLog));
        assert.equal(e.details['stage'], 'command');
      }),
    );
  });

  test('a host key mismatch is final: it is not retried until the command timeout', async () => {
    const other = await ensureProfileKeys(join(dir, 'other'));
    const impostor = await sshd(undefined, other.hostPrivateKeyPath);
    // A retried mismatch would end as GUEST_SSH_COMMAND_TIMEOUT after the (long) command limit.
    await assert.rejects(
      waitForSsh(options(impostor.port, join(dir, 'x'), { timeouts: { banner: 60_000, command: 600_000, marker: 60_000 } })),
      isError('GUEST_HOST_KEY_MISMATCH'),
    );
  });

  test('an AbortSignal cancels the wait in the banner and in the marker stage', async () => {
    const listener = await silent();
    const controller = new AbortController();
    const waiting = waitForSsh(options(listener.port, join(dir, 'x'), { signal: controller.signal }));
    await reachedWhileWaiting(waiting, listener.waitForConnections(1), 'the first connection');
    controller.abort();
    await assert.rejects(waiting, isError('INTERRUPTED'));

    const server = servers[0] ?? (await sshd());
    const second = new AbortController();
    const watch = progressWatcher();
    const waitingForMarker = waitForSsh(options(server.port, join(dir, 'never'), { signal: second.signal, onProgress: watch.onProgress }));
    await reachedWhileWaiting(waitingForMarker, watch.reached('marker', 2), 'marker attempt 2');
    second.abort();
    await assert.rejects(waitingForMarker, isError('INTERRUPTED'));
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.ts';
import { ensureProfileKeys } from '../../src/ssh/keys.ts';
import type { ProfileKeys } from '../../src/ssh/keys.ts';
import { sshHostKeyFingerprint } from '../../src/ssh/known-hosts.ts';
import { connect } from '../../src/ssh/session.ts';
import type { SshSession } from '../../src/ssh/session.ts';
import { CommandLog } from '../../src/ui/log.ts';
import { setCommandLog } from '../../src/ui/context.ts';
import { freePort, HOST, sshdMissing, startSshd } from './ssh-server.ts';
import type { SshServer } from './ssh-server.ts';
import { isError } from '../helpers/errors.ts';

const skip = sshdMissing();


describe('ssh session against a real sshd', { skip }, () => {
  let dir: string;
  let keys: ProfileKeys;
  let server: SshServer;
  let session: SshSession;
  const servers: SshServer[] = [];

  before(async () => {
    dir = await tempDir('devcluster-ssh-session-');
    keys = await ensureProfileKeys(join(dir, 'keys'));
    // sshd loads the host key devcluster generated: proves the private key format.
    server = await startSshd({ hostKeyPath: keys.hostPrivateKeyPath, authorizedKeys: `${keys.clientPublicKey}\n` });
    servers.push(server);
    session = await connect({
      host: server.host,
      port: server.port,
      username: server.user,
      privateKeyPath: keys.clientPrivateKeyPath,
      expectedHostKey: keys.hostPublicKey,
      readyTimeoutMs: 20_000,
    });
  });

  after(async () => {
    session?.dispose();
    setCommandLog(undefined);
    for (const s of servers) await s.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('exec returns stdout, stderr and the exit code', async () => {
    const r = await session.exec(['sh', '-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 20_000 });
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.code, 3);
    assert.equal((await session.exec(['true'])).code, 0);
  });

  test('an argument array arrives argument by argument', async () => {
    const args = ['a b', "it's", '$HOME', '', '*', 'x;y', '"q"', 'ü'];
    const r = await session.exec(['printf', '[%s]', ...args]);
    assert.equal(r.stdout, args.map((a) => `[${a}]`).join(''));
  });

  test('a string is a shell command line', async () => {
    const r = await session.exec('echo $((40 + 2)) | tr 4 X');
    assert.equal(r.stdout, 'X2\n');
  });

  test('input goes to stdin, binary-safe', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13]);
    const r = await session.exec(['od', '-An', '-tx1'], { input: bytes });
    assert.equal(r.stdout.trim().split(/\s+/).join(' '), '00 01 02 ff 0a 0d');
    assert.equal((await session.exec(['cat'], { input: 'hello' })).stdout, 'hello');
  });

  test('a command killed by a signal reports it', async () => {
    const r = await session.exec(['sh', '-c', 'kill -TERM $$']);
    assert.equal(r.code, -1);
    assert.equal(r.signal, 'SIGTERM');
  });

  test('run throws GUEST_COMMAND_FAILED (exit 84) with the stderr line', async () => {
    await assert.rejects(
      session.run(['sh', '-c', 'echo bad thing >&2; exit 5']),
      isError('GUEST_COMMAND_FAILED', (e) => {
        assert.equal(e.exitCode, 84);
        assert.match(e.message, /exited with code 5 in the guest: bad thing/);
      }),
    );
    assert.equal((await session.run(['sh', '-c', 'exit 5'], { okExitCodes: [5] })).code, 5);
  });

  test('a command over its time limit fails with GUEST_COMMAND_TIMEOUT and the session stays usable', async () => {
    await assert.rejects(session.exec(['sleep', '30'], { timeoutMs: 300 }), isError('GUEST_COMMAND_TIMEOUT', (e) => assert.equal(e.exitCode, 83)));
    assert.equal((await session.exec(['echo', 'still here'])).stdout, 'still here\n');
  });

  test('exec is cancelled by an AbortSignal', async () => {
    const controller = new AbortController();
    const running = session.exec(['sleep', '30'], { signal: controller.signal, timeoutMs: 60_000 });
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(running, isError('INTERRUPTED'));
    await assert.rejects(session.exec(['true'], { signal: AbortSignal.abort() }), isError('INTERRUPTED'));
    assert.equal((await session.exec(['true'])).code, 0);
  });

  test('remote commands are logged with secrets redacted', async () => {
    const log = new CommandLog(join(dir, 'logs'), 'ssh-test');
    setCommandLog(log);
    try {
      await session.exec(['echo', 'password=hunter22', 'plain-s3cr3t-value'], { secrets: ['s3cr3t'] });
    } finally {
      setCommandLog(undefined);
    }
    const path = log.path;
    assert.ok(path !== undefined, 'running a remote command persists the log');
    const text = await readFile(path, 'utf8');
    assert.match(text, /exec\s+ssh \S+@127\.0\.0\.1:\d+ \$ echo/);
    assert.match(text, /exit=0/);
    assert.doesNotMatch(text, /hunter22/);
    assert.doesNotMatch(text, /s3cr3t/);
  });

  test('putContent and putFile write atomically with the exact mode; getFile reads back', async () => {
    const remoteDir = join(dir, 'remote');
    await mkdir(remoteDir);
    const target = join(remoteDir, 'config.yaml');
    await session.putContent('first\n', target, 0o600);
    assert.equal(await readFile(target, 'utf8'), 'first\n');
    assert.equal((await stat(target)).mode & 0o777, 0o600);

    // Overwrites an existing file; no temporary file is left behind.
    await session.putContent(new Uint8Array([104, 105]), target, 0o640);
    assert.equal(await readFile(target, 'utf8'), 'hi');
    assert.equal((await stat(target)).mode & 0o777, 0o640);

    const local = join(dir, 'script.sh');
    const big = `#!/bin/sh\n${'echo 0123456789abcdef\n'.repeat(20_000)}`;
    await writeFile(local, big);
    const script = join(remoteDir, 'script.sh');
    await session.putFile(local, script, 0o755);
    assert.equal(await readFile(script, 'utf8'), big);
    assert.equal((await stat(script)).mode & 0o777, 0o755);
    assert.deepEqual((await readdir(remoteDir)).sort(), ['config.yaml', 'script.sh']);

    const back = join(dir, 'back', 'config.yaml');
    await session.getFile(target, back);
    assert.equal(await readFile(back, 'utf8'), 'hi');
    assert.equal((await stat(back)).mode & 0o777, 0o600);
  });

  test('SFTP failures are GUEST_FILE_TRANSFER_FAILED', async () => {
    await assert.rejects(
      session.putContent('x', join(dir, 'no-such-dir', 'f'), 0o644),
      isError('GUEST_FILE_TRANSFER_FAILED', (e) => assert.equal(e.exitCode, 87)),
    );
    await assert.rejects(session.getFile(join(dir, 'no-such-file'), join(dir, 'out')), isError('GUEST_FILE_TRANSFER_FAILED'));
  });

  test('a server with another host key is refused with GUEST_HOST_KEY_MISMATCH before login', async () => {
    const other = await ensureProfileKeys(join(dir, 'other-keys'));
    const impostor = await startSshd({ hostKeyPath: other.hostPrivateKeyPath, authorizedKeys: `${keys.clientPublicKey}\n` });
    servers.push(impostor);
    await assert.rejects(
      connect({
        host: impostor.host,
        port: impostor.port,
        username: impostor.user,
        privateKeyPath: keys.clientPrivateKeyPath,
        expectedHostKey: keys.hostPublicKey,
      }),
      isError('GUEST_HOST_KEY_MISMATCH', (e) => {
        assert.equal(e.exitCode, 86);
        assert.ok(e.message.includes(sshHostKeyFingerprint(other.hostPublicKey)), e.message);
        assert.ok(e.message.includes(sshHostKeyFingerprint(keys.hostPublicKey)), e.message);
        assert.match(e.advice ?? '', /recreated outside devcluster/);
        assert.match(e.advice ?? '', /another program answers/);
      }),
    );
    assert.doesNotMatch(impostor.log(), /Accepted publickey|Failed publickey|userauth/i);
  });

  test('a key the server does not accept is GUEST_SSH_AUTH_FAILED', async () => {
    const stranger = await ensureProfileKeys(join(dir, 'stranger-keys'));
    await assert.rejects(
      connect({
        host: server.host,
        port: server.port,
        username: server.user,
        privateKeyPath: stranger.clientPrivateKeyPath,
        expectedHostKey: keys.hostPublicKey,
      }),
      isError('GUEST_SSH_AUTH_FAILED', (e) => assert.equal(e.exitCode, 82)),
    );
  });

  test('nothing listening is GUEST_SSH_UNREACHABLE; a cancelled connect is INTERRUPTED', async () => {
    const port = await freePort();
    const options = { host: HOST, port, username: server.user, privateKeyPath: keys.clientPrivateKeyPath, expectedHostKey: keys.hostPublicKey };
    await assert.rejects(connect(options), isError('GUEST_SSH_UNREACHABLE', (e) => assert.match(e.message, /connection refused/)));
    await assert.rejects(connect({ ...options, port: server.port, signal: AbortSignal.abort() }), isError('INTERRUPTED'));
  });

  test('a dropped connection fails the running command with GUEST_SSH_DISCONNECTED', async () => {
    const second = await connect({
      host: server.host,
      port: server.port,
      username: server.user,
      privateKeyPath: keys.clientPrivateKeyPath,
      expectedHostKey: keys.hostPublicKey,
    });
    // The command kills its own sshd session process: the connection drops mid-command.
    await assert.rejects(second.exec(['sh', '-c', 'kill -KILL $PPID; sleep 30'], { timeoutMs: 20_000 }), isError('GUEST_SSH_DISCONNECTED'));
    assert.equal(second.connected, false);
    await assert.rejects(second.exec(['true']), isError('GUEST_SSH_DISCONNECTED'));
    second.dispose();
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { ensureProfileKeys } from '../../src/ssh/keys.ts';
import type { ProfileKeys } from '../../src/ssh/keys.ts';
import { pinHostKey } from '../../src/ssh/known-hosts.ts';
import { sshCommandLine } from '../../src/ssh/interactive.ts';
import type { SshCommandLineOptions } from '../../src/ssh/interactive.ts';
import { sshdMissing, startSshd } from './ssh-server.ts';
import type { SshServer } from './ssh-server.ts';

const skip = sshdMissing() ?? (skipUnlessPresent(existsSync('/usr/bin/ssh') ? false : '/usr/bin/ssh is missing: install the Debian package openssh-client') || undefined);

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runSsh(args: readonly string[], home: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    // A private HOME proves the user's ~/.ssh is neither read nor written.
    const child = spawn('ssh', [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HOME: home } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

describe('the system ssh client with sshCommandLine', { skip }, () => {
  let dir: string;
  let home: string;
  let keysDir: string;
  let keys: ProfileKeys;
  let server: SshServer;
  let base: SshCommandLineOptions;

  before(async () => {
    dir = await tempDir('devcluster-ssh-client-');
    home = join(dir, 'home');
    await mkdir(home);
    // Spaces and % in the path: ssh_config values split on spaces and expand % tokens.
    keysDir = join(dir, 'John Doe %h', 'keys');
    keys = await ensureProfileKeys(keysDir);
    server = await startSshd({ hostKeyPath: keys.hostPrivateKeyPath, authorizedKeys: `${keys.clientPublicKey}\n` });
    const knownHostsPath = join(keysDir, 'known_hosts');
    await pinHostKey(knownHostsPath, server.host, server.port, keys.hostPublicKey);
    base = { host: server.host, port: server.port, user: server.user, privateKeyPath: keys.clientPrivateKeyPath, knownHostsPath, platform: 'linux' };
  });

  after(async () => {
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('runs a command and propagates its exit code and output', async () => {
    const line = sshCommandLine({ ...base, command: ['sh', '-c', 'echo "out $0"; echo err >&2; exit 7', 'arg zero'], quoteCommand: true });
    assert.equal(line.command, 'ssh');
    const r = await runSsh(line.args, home);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'out arg zero\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(existsSync(join(home, '.ssh')), false);
  });

  test('without quoteCommand the words go to the remote shell, as with plain ssh', async () => {
    const r = await runSsh(sshCommandLine({ ...base, command: ['echo', 'a', '|', 'tr', 'a', 'b'] }).args, home);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'b\n');
  });

  test('a command word that looks like an ssh option is sent as the command', async () => {
    const r = await runSsh(sshCommandLine({ ...base, command: ['-V'] }).args, home);
    // Parsed by ssh, -V would print its version and exit 0; the remote shell rejects it instead.
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /^OpenSSH_/);
    assert.match(r.stderr, /-V/);
  });

  test('a host key other than the pinned one makes ssh refuse', async () => {
    const other = await ensureProfileKeys(join(dir, 'other'));
    const knownHostsPath = join(dir, 'other', 'known_hosts');
    await pinHostKey(knownHostsPath, server.host, server.port, other.hostPublicKey);
    const r = await runSsh(sshCommandLine({ ...base, knownHostsPath, command: ['true'] }).args, home);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Host key verification failed/);
  });
});

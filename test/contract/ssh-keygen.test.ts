/**
 * Our key files, read by the real OpenSSH ssh-keygen (Debian package
 * openssh-client), and keys ssh-keygen wrote, read by our decoder.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { decodeOpenSshPrivateKey, encodeOpenSshPrivateKey, ensureProfileKeys, formatPublicKeyLine } from '../../src/ssh/keys.ts';
import { sshHostKeyFingerprint } from '../../src/ssh/known-hosts.ts';
import { WireReader } from '../../src/ssh/wire.ts';

const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const skip = skipUnlessPresent(existsSync(SSH_KEYGEN) ? false : `${SSH_KEYGEN} is missing: install the Debian package openssh-client`);

/** Its output is parsed, so it runs in the C locale whatever the test runner's locale is. */
function keygen(args: string[]): string {
  return execFileSync(SSH_KEYGEN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LANG: 'C', LC_ALL: 'C' } });
}

describe('OpenSSH key files against ssh-keygen', { skip }, () => {
  let dir: string;

  before(async () => {
    dir = await tempDir('devcluster-ssh-keygen-');
  });

  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('ssh-keygen -y derives the same public key from our private keys', async () => {
    const keys = await ensureProfileKeys(join(dir, 'keys'), { clientComment: 'devcluster@demo' });
    const key = (line: string): string => line.trim().split(/\s+/).slice(0, 2).join(' ');
    assert.equal(key(keygen(['-y', '-f', keys.clientPrivateKeyPath])), key(keys.clientPublicKey));
    assert.equal(key(keygen(['-y', '-f', keys.hostPrivateKeyPath])), key(keys.hostPublicKey));
    assert.equal(keys.clientPublicKey.split(' ')[2], 'devcluster@demo');
  });

  test('ssh-keygen -l prints our fingerprint and comment for the private and the public file', async () => {
    const keys = await ensureProfileKeys(join(dir, 'keys'));
    for (const path of [keys.hostPrivateKeyPath, `${keys.hostPrivateKeyPath}.pub`]) {
      const [bits, fingerprint, comment, type] = keygen(['-l', '-f', path]).trim().split(/\s+/);
      assert.equal(bits, '256');
      assert.equal(fingerprint, sshHostKeyFingerprint(keys.hostPublicKey));
      assert.equal(comment, 'devcluster-guest-host-key');
      assert.equal(type, '(ED25519)');
    }
  });

  test('keys written by ssh-keygen decode, and re-encode to the same bytes', async () => {
    for (const comment of ['', 'ab', 'a-longer-comment@example.test']) {
      const path = join(dir, `generated-${comment.length}`);
      keygen(['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
      const text = await readFile(path, 'utf8');
      const pair = decodeOpenSshPrivateKey(text);
      assert.equal(pair.comment, comment);
      assert.equal(formatPublicKeyLine(pair.publicKey, pair.comment), (await readFile(`${path}.pub`, 'utf8')).trim());
      // Same check ints as the original: then the whole file must be identical.
      const r = new WireReader(Buffer.from(text.split('\n').filter((l) => !l.startsWith('-----')).join(''), 'base64').subarray(15));
      for (let i = 0; i < 3; i++) r.string(); // cipher, kdf, kdf options
      r.uint32(); // key count
      r.string(); // public key
      const checkInt = new WireReader(r.string()).uint32();
      assert.equal(encodeOpenSshPrivateKey(pair, { checkInt }), text);
    }
  });

  test('ssh-keygen refuses nothing we write: passphrase change succeeds on our key', async () => {
    const keys = await ensureProfileKeys(join(dir, 'pp'));
    // -p rewrites the key; it must first parse and validate ours (check ints, padding).
    keygen(['-p', '-P', '', '-N', '', '-f', keys.clientPrivateKeyPath]);
    const rewritten = decodeOpenSshPrivateKey(await readFile(keys.clientPrivateKeyPath, 'utf8'));
    assert.equal(formatPublicKeyLine(rewritten.publicKey, rewritten.comment), keys.clientPublicKey);
  });
});

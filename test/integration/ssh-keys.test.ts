import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.ts';
import { CLIENT_KEY_FILE, decodeOpenSshPrivateKey, ensureProfileKeys, HOST_KEY_FILE } from '../../src/ssh/keys.ts';
import { pinHostKey, pinnedHostKey } from '../../src/ssh/known-hosts.ts';
import { DevclusterError } from '../../src/ui/errors.ts';

describe('ensureProfileKeys on disk', () => {
  let dir: string;

  before(async () => {
    dir = await tempDir('devcluster-ssh-keys-');
  });

  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('creates both key pairs with private keys 0600 in a 0700 directory', async () => {
    const keysDir = join(dir, 'p1', 'keys');
    const keys = await ensureProfileKeys(keysDir);
    assert.deepEqual(keys.created, { client: true, host: true });
    assert.equal(keys.clientPrivateKeyPath, join(keysDir, CLIENT_KEY_FILE));
    assert.equal(keys.hostPrivateKeyPath, join(keysDir, HOST_KEY_FILE));
    assert.equal((await stat(keysDir)).mode & 0o777, 0o700);
    assert.equal((await stat(keys.clientPrivateKeyPath)).mode & 0o777, 0o600);
    assert.equal((await stat(keys.hostPrivateKeyPath)).mode & 0o777, 0o600);
    assert.equal(await readFile(keys.hostPrivateKeyPath, 'utf8'), keys.hostPrivateKey);
    assert.equal((await readFile(keys.clientPublicKeyPath, 'utf8')).trim(), keys.clientPublicKey);
    assert.equal((await readFile(`${keys.hostPrivateKeyPath}.pub`, 'utf8')).trim(), keys.hostPublicKey);
    assert.notEqual(keys.clientPublicKey.split(' ')[1], keys.hostPublicKey.split(' ')[1]);
    decodeOpenSshPrivateKey(keys.hostPrivateKey);
  });

  test('a second call reuses the keys, and restores a missing .pub from the private key', async () => {
    const keysDir = join(dir, 'p2', 'keys');
    const first = await ensureProfileKeys(keysDir);
    await unlink(first.clientPublicKeyPath);
    await writeFile(`${first.hostPrivateKeyPath}.pub`, 'stale\n');
    const second = await ensureProfileKeys(keysDir);
    assert.deepEqual(second.created, { client: false, host: false });
    assert.equal(second.clientPublicKey, first.clientPublicKey);
    assert.equal(second.hostPublicKey, first.hostPublicKey);
    assert.equal(second.hostPrivateKey, first.hostPrivateKey);
    assert.equal((await readFile(first.clientPublicKeyPath, 'utf8')).trim(), first.clientPublicKey);
    assert.equal((await readFile(`${first.hostPrivateKeyPath}.pub`, 'utf8')).trim(), first.hostPublicKey);
  });

  test('a damaged host key is reported, never replaced', async () => {
    const keysDir = join(dir, 'p3', 'keys');
    const keys = await ensureProfileKeys(keysDir);
    const damaged = keys.hostPrivateKey.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
    await writeFile(keys.hostPrivateKeyPath, damaged);
    await assert.rejects(ensureProfileKeys(keysDir), (e: unknown) => {
      assert.ok(e instanceof DevclusterError);
      assert.equal(e.id, 'SSH_KEY_INVALID');
      assert.equal(e.exitCode, 18);
      assert.ok(e.message.includes(keys.hostPrivateKeyPath));
      return true;
    });
    assert.equal(await readFile(keys.hostPrivateKeyPath, 'utf8'), damaged);
  });
});

describe('the profile known_hosts file', () => {
  let dir: string;

  before(async () => {
    dir = await tempDir('devcluster-known-hosts-');
  });

  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('pinning replaces the entry for the same endpoint and keeps the others', async () => {
    const a = await ensureProfileKeys(join(dir, 'a'));
    const b = await ensureProfileKeys(join(dir, 'b'));
    const path = join(dir, 'keys', 'known_hosts');
    const blob = (line: string): string => line.split(' ').slice(0, 2).join(' ');

    await pinHostKey(path, '127.0.0.1', 2222, a.hostPublicKey);
    await pinHostKey(path, '192.168.64.5', 22, a.hostPublicKey);
    await pinHostKey(path, '127.0.0.1', 2222, b.hostPublicKey);

    const text = await readFile(path, 'utf8');
    assert.equal(text, `192.168.64.5 ${blob(a.hostPublicKey)}\n[127.0.0.1]:2222 ${blob(b.hostPublicKey)}\n`);
    assert.equal(await pinnedHostKey(path, '127.0.0.1', 2222), blob(b.hostPublicKey));
    assert.equal(await pinnedHostKey(path, '192.168.64.5', 22), blob(a.hostPublicKey));
    assert.equal(await pinnedHostKey(path, '127.0.0.1', 22), undefined);
    assert.equal(await pinnedHostKey(join(dir, 'missing'), '127.0.0.1', 2222), undefined);
  });
});

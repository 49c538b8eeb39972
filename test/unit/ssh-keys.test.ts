import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeOpenSshPrivateKey,
  ed25519PublicBlob,
  ed25519PublicFromSeed,
  encodeOpenSshPrivateKey,
  formatPublicKeyLine,
  generateEd25519,
  parsePublicKeyLine,
} from '../../src/ssh/keys.ts';
import { knownHostsLine, knownHostsPattern, sshHostKeyFingerprint } from '../../src/ssh/known-hosts.ts';

// RFC 8032 section 7.1, test 1.
const RFC_SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const RFC_PUBLIC = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
// `ssh-keygen -l -f` of RFC_LINE, computed once with OpenSSH 9.2.
const RFC_LINE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea rfc8032-test-1';
const RFC_FINGERPRINT = 'SHA256:bbXpuKG6zhzdmnxq256TlqzFBzRl2f6OOg722cYNbU8';

/** The base64 body of a PEM block as bytes. */
function pemBody(pem: string): Buffer {
  return Buffer.from(pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----')).join(''), 'base64');
}

function pem(body: Buffer): string {
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

describe('ed25519 keys', () => {
  test('the public key is derived from the seed as RFC 8032 says', () => {
    assert.deepEqual(ed25519PublicFromSeed(RFC_SEED), RFC_PUBLIC);
  });

  test('the public key line and its fingerprint match OpenSSH', () => {
    assert.equal(formatPublicKeyLine(RFC_PUBLIC, 'rfc8032-test-1'), RFC_LINE);
    assert.equal(sshHostKeyFingerprint(RFC_LINE), RFC_FINGERPRINT);
    assert.equal(sshHostKeyFingerprint(ed25519PublicBlob(RFC_PUBLIC)), RFC_FINGERPRINT);
  });

  test('a generated key pair is consistent and unique', () => {
    const a = generateEd25519('a');
    const b = generateEd25519('b');
    assert.equal(a.seed.length, 32);
    assert.deepEqual(ed25519PublicFromSeed(a.seed), a.publicKey);
    assert.notDeepEqual(a.seed, b.seed);
  });

  test('the OpenSSH private key format round-trips', () => {
    const pair = { seed: RFC_SEED, publicKey: RFC_PUBLIC, comment: 'user@host' };
    const text = encodeOpenSshPrivateKey(pair, { checkInt: 0x01020304 });
    assert.match(text, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    assert.match(text, /\n-----END OPENSSH PRIVATE KEY-----\n$/);
    for (const line of text.split('\n').slice(1, -2)) assert.ok(line.length <= 70, 'base64 lines wrap at 70 like ssh-keygen');
    const decoded = decodeOpenSshPrivateKey(text);
    assert.deepEqual(decoded, { seed: RFC_SEED, publicKey: RFC_PUBLIC, comment: 'user@host' });
  });

  test('the encoding has the openssh-key-v1 layout: magic, none/none, one key, check ints, padding', () => {
    const body = pemBody(encodeOpenSshPrivateKey({ seed: RFC_SEED, publicKey: RFC_PUBLIC, comment: 'c' }, { checkInt: 0xdeadbeef }));
    assert.equal(body.subarray(0, 15).toString('latin1'), 'openssh-key-v1\0');
    assert.ok(body.includes(Buffer.from('\0\0\0\x04none\0\0\0\x04none\0\0\0\0\0\0\0\x01', 'latin1')));
    const checks = Buffer.from('deadbeefdeadbeef', 'hex');
    assert.ok(body.includes(checks));
    // The private section is a multiple of 8 bytes and ends with the 1, 2, 3... padding.
    const sectionStart = body.indexOf(checks);
    const sectionLength = body.readUInt32BE(sectionStart - 4);
    assert.equal(sectionLength % 8, 0);
    assert.equal(sectionStart + sectionLength, body.length);
    // 4+4 check ints, 4+11 type, 4+32 public, 4+64 secret, 4+1 comment = 132: padding 1,2,3,4.
    assert.deepEqual([...body.subarray(body.length - 4)], [1, 2, 3, 4]);
  });

  test('comments cannot break the one-line formats', () => {
    const pair = { ...generateEd25519('line one\nline two\r'), comment: 'x' };
    assert.equal(generateEd25519('a\nb').comment, 'a b');
    assert.equal(decodeOpenSshPrivateKey(encodeOpenSshPrivateKey({ ...pair, comment: 'p\nq' })).comment, 'p q');
    assert.doesNotMatch(formatPublicKeyLine(pair.publicKey, 'a\nb'), /\n/);
  });

  test('corrupt or foreign private keys are rejected with a reason', () => {
    const good = encodeOpenSshPrivateKey({ seed: RFC_SEED, publicKey: RFC_PUBLIC, comment: 'c' }, { checkInt: 0x11111111 });
    const body = pemBody(good);

    const checks = Buffer.from(body);
    const at = checks.indexOf(Buffer.from('1111111111111111', 'hex'));
    checks[at + 7] = 0x12;
    assert.throws(() => decodeOpenSshPrivateKey(pem(checks)), /check ints differ/);

    const padding = Buffer.from(body);
    padding[padding.length - 1] = 9;
    assert.throws(() => decodeOpenSshPrivateKey(pem(padding)), /padding/);

    // Another seed with the original public key: the halves do not belong together.
    const other = Buffer.from(body);
    const seedAt = other.indexOf(RFC_SEED);
    other[seedAt] = other[seedAt]! ^ 1;
    assert.throws(() => decodeOpenSshPrivateKey(pem(other)), /does not belong/);

    const encrypted = Buffer.from(body.toString('latin1').replace('\0\0\0\x04none\0\0\0\x04none', '\0\0\0\x04none\0\0\0\x04nonf'), 'latin1');
    assert.throws(() => decodeOpenSshPrivateKey(pem(encrypted)), /encrypted/);

    assert.throws(() => decodeOpenSshPrivateKey('-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n'), /not an OpenSSH private key/);
    assert.throws(() => decodeOpenSshPrivateKey(pem(body.subarray(0, 60))), /truncated/);
  });

  test('public key lines are parsed and checked', () => {
    const parsed = parsePublicKeyLine(`  ${RFC_LINE}  `);
    assert.equal(parsed.type, 'ssh-ed25519');
    assert.equal(parsed.comment, 'rfc8032-test-1');
    assert.deepEqual(parsed.blob, ed25519PublicBlob(RFC_PUBLIC));
    assert.throws(() => parsePublicKeyLine('ssh-ed25519'), /not an OpenSSH public key/);
    assert.throws(() => parsePublicKeyLine(RFC_LINE.replace(/^ssh-ed25519/, 'ssh-rsa')), /of type ssh-ed25519, but the line says ssh-rsa/);
    const short = Buffer.concat([ed25519PublicBlob(RFC_PUBLIC).subarray(0, 15), Buffer.from([0, 0, 0, 2, 1, 2])]).toString('base64');
    assert.throws(() => parsePublicKeyLine(`ssh-ed25519 ${short}`), /exactly 32 bytes/);
  });
});

describe('known_hosts lines', () => {
  test('use [host]:port off port 22 and drop the comment', () => {
    assert.equal(knownHostsPattern('127.0.0.1', 2222), '[127.0.0.1]:2222');
    assert.equal(knownHostsPattern('192.168.5.15', 22), '192.168.5.15');
    assert.equal(knownHostsLine('127.0.0.1', 2222, RFC_LINE), `[127.0.0.1]:2222 ssh-ed25519 ${RFC_LINE.split(' ')[1]}`);
    assert.equal(knownHostsLine('10.0.0.2', 22, RFC_LINE), `10.0.0.2 ssh-ed25519 ${RFC_LINE.split(' ')[1]}`);
  });
});

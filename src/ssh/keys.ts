import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { readTextIfExists } from '../host/read-if-exists.ts';
import { join } from 'node:path';
import { writeFileAtomic } from '../profile/atomic.ts';
import { DevclusterError } from '../ui/errors.ts';
import { sshString, uint32, WireReader } from './wire.ts';
import './errors.ts';

/**
 * Ed25519 keys made with node:crypto and written in OpenSSH's own formats, so
 * no host needs ssh-keygen (Windows may lack it) and what we write is read
 * as-is by sshd, cloud-init (ssh_keys: ed25519_private), ssh and ssh2.
 */

export const ED25519 = 'ssh-ed25519';

export interface Ed25519KeyPair {
  /** The 32-byte private seed (RFC 8032 "private key"). */
  readonly seed: Buffer;
  /** The 32-byte public key. */
  readonly publicKey: Buffer;
  readonly comment: string;
}

const PEM_BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const PEM_END = '-----END OPENSSH PRIVATE KEY-----';
const AUTH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');
// Unencrypted keys are padded to the cipher block size of "none".
const BLOCK_SIZE = 8;
// DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows it.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function generateEd25519(comment: string): Ed25519KeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    seed: Buffer.from(String(jwk.d), 'base64url'),
    publicKey: Buffer.from(String(jwk.x), 'base64url'),
    comment: cleanComment(comment),
  };
}

/** The public key that belongs to a seed, computed by node:crypto. */
export function ed25519PublicFromSeed(seed: Uint8Array): Buffer {
  if (seed.length !== 32) throw new Error(`an ed25519 seed has 32 bytes, not ${seed.length}`);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return Buffer.from(String(createPublicKey(privateKey).export({ format: 'jwk' }).x), 'base64url');
}

/** The wire-format public key blob: string "ssh-ed25519", string key. */
export function ed25519PublicBlob(publicKey: Uint8Array): Buffer {
  return Buffer.concat([sshString(ED25519), sshString(publicKey)]);
}

/** `ssh-ed25519 AAAA... comment`, as in authorized_keys and *.pub files. */
export function formatPublicKeyLine(publicKey: Uint8Array, comment = ''): string {
  const c = cleanComment(comment);
  return `${ED25519} ${ed25519PublicBlob(publicKey).toString('base64')}${c === '' ? '' : ` ${c}`}`;
}

export interface ParsedPublicKey {
  readonly type: string;
  /** The wire-format blob: what SSH servers present and fingerprints hash. */
  readonly blob: Buffer;
  readonly comment: string;
}

/** Parses `type base64 [comment]`; the type inside the blob must agree. */
export function parsePublicKeyLine(line: string): ParsedPublicKey {
  const fields = line.trim().split(/\s+/);
  const [type, data] = fields;
  if (type === undefined || data === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(data)) {
    throw new Error('not an OpenSSH public key line ("<type> <base64> [comment]")');
  }
  const blob = Buffer.from(data, 'base64');
  let inner: string;
  try {
    inner = new WireReader(blob).text();
  } catch {
    throw new Error('the public key data is truncated');
  }
  if (inner !== type) throw new Error(`the key data is of type ${inner}, but the line says ${type}`);
  if (type === ED25519) {
    const r = new WireReader(blob);
    r.string();
    if (r.string().length !== 32 || r.remaining !== 0) throw new Error('an ssh-ed25519 key must hold exactly 32 bytes');
  }
  return { type, blob, comment: fields.slice(2).join(' ') };
}

export interface EncodeOptions {
  /** The "check int" pair; random unless given (tests pin it). */
  checkInt?: number;
}

/** Serializes an unencrypted openssh-key-v1 private key (PROTOCOL.key). */
export function encodeOpenSshPrivateKey(pair: Ed25519KeyPair, options: EncodeOptions = {}): string {
  const checkInt = options.checkInt ?? randomBytes(4).readUInt32BE(0);
  const unpadded = Buffer.concat([
    uint32(checkInt),
    uint32(checkInt),
    sshString(ED25519),
    sshString(pair.publicKey),
    // OpenSSH stores the 64-byte form: seed followed by the public key.
    sshString(Buffer.concat([pair.seed, pair.publicKey])),
    sshString(cleanComment(pair.comment)),
  ]);
  const padLength = (BLOCK_SIZE - (unpadded.length % BLOCK_SIZE)) % BLOCK_SIZE;
  const padding = Buffer.from(Array.from({ length: padLength }, (_, i) => i + 1));
  const body = Buffer.concat([
    AUTH_MAGIC,
    sshString('none'), // cipher
    sshString('none'), // kdf
    sshString(''), // kdf options
    uint32(1), // number of keys
    sshString(ed25519PublicBlob(pair.publicKey)),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return `${PEM_BEGIN}\n${lines.join('\n')}\n${PEM_END}\n`;
}

/**
 * Reads an unencrypted ed25519 openssh-key-v1 private key and checks every
 * invariant OpenSSH checks (magic, check ints, padding) plus that the public
 * key really belongs to the seed. Throws an Error saying what is wrong.
 */
export function decodeOpenSshPrivateKey(text: string): Ed25519KeyPair {
  const begin = text.indexOf(PEM_BEGIN);
  const end = text.indexOf(PEM_END);
  if (begin === -1 || end === -1 || end < begin) throw new Error(`not an OpenSSH private key (no "${PEM_BEGIN}" block)`);
  const body = Buffer.from(text.slice(begin + PEM_BEGIN.length, end).replace(/\s+/g, ''), 'base64');
  if (body.length < AUTH_MAGIC.length || !body.subarray(0, AUTH_MAGIC.length).equals(AUTH_MAGIC)) {
    throw new Error('not an openssh-key-v1 key');
  }
  const r = new WireReader(body.subarray(AUTH_MAGIC.length));
  const cipher = r.text();
  const kdf = r.text();
  r.string();
  if (cipher !== 'none' || kdf !== 'none') throw new Error(`the key is encrypted (${cipher}/${kdf}); devcluster needs an unencrypted key`);
  const count = r.uint32();
  if (count !== 1) throw new Error(`the file holds ${count} keys; expected 1`);
  const outerPublic = r.string();
  const section = r.string();
  if (section.length % BLOCK_SIZE !== 0) throw new Error('the private section is not padded to the block size');

  const p = new WireReader(section);
  if (p.uint32() !== p.uint32()) throw new Error('the check ints differ (corrupt or encrypted key)');
  const type = p.text();
  if (type !== ED25519) throw new Error(`the key is of type ${type}; devcluster uses ssh-ed25519`);
  const publicKey = p.string();
  const secret = p.string();
  const comment = p.text();
  const padding = p.rest();
  if (publicKey.length !== 32 || secret.length !== 64) throw new Error('the ed25519 key has the wrong length');
  if (!padding.equals(Buffer.from(Array.from({ length: padding.length }, (_, i) => i + 1)))) throw new Error('the padding is corrupt');
  const seed = Buffer.from(secret.subarray(0, 32));
  if (!secret.subarray(32).equals(publicKey) || !outerPublic.equals(ed25519PublicBlob(publicKey))) {
    throw new Error('the public key copies inside the file disagree');
  }
  if (!ed25519PublicFromSeed(seed).equals(publicKey)) throw new Error('the public key does not belong to the private key');
  return { seed, publicKey: Buffer.from(publicKey), comment };
}

export interface ProfileKeys {
  /** The key devcluster (and `devcluster ssh`) logs in with. */
  readonly clientPrivateKeyPath: string;
  readonly clientPublicKeyPath: string;
  /** `ssh-ed25519 AAAA... comment`: goes into the guest's authorized_keys. */
  readonly clientPublicKey: string;
  readonly hostPrivateKeyPath: string;
  /** The guest's sshd host key (PEM text) for cloud-init's ssh_keys. */
  readonly hostPrivateKey: string;
  /** The guest's host public key line: what known_hosts pins. */
  readonly hostPublicKey: string;
  /** Which keys this call created (false: an existing key was reused). */
  readonly created: { readonly client: boolean; readonly host: boolean };
}

export interface ProfileKeyOptions {
  clientComment?: string;
  hostComment?: string;
}

export const CLIENT_KEY_FILE = 'id_ed25519';
export const HOST_KEY_FILE = 'ssh_host_ed25519_key';

/**
 * The profile's client key and guest host key, created on first use and
 * reused afterwards. An existing key is never replaced: the guest already
 * trusts the client key and already presents the host key.
 */
export async function ensureProfileKeys(keysDir: string, options: ProfileKeyOptions = {}): Promise<ProfileKeys> {
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const client = await ensureKeyPair(join(keysDir, CLIENT_KEY_FILE), options.clientComment ?? 'devcluster');
  const host = await ensureKeyPair(join(keysDir, HOST_KEY_FILE), options.hostComment ?? 'devcluster-guest-host-key');
  return {
    clientPrivateKeyPath: client.privatePath,
    clientPublicKeyPath: client.publicPath,
    clientPublicKey: client.publicLine,
    hostPrivateKeyPath: host.privatePath,
    hostPrivateKey: host.privatePem,
    hostPublicKey: host.publicLine,
    created: { client: client.created, host: host.created },
  };
}

interface StoredKeyPair {
  privatePath: string;
  publicPath: string;
  privatePem: string;
  publicLine: string;
  created: boolean;
}

async function ensureKeyPair(privatePath: string, comment: string): Promise<StoredKeyPair> {
  const publicPath = `${privatePath}.pub`;
  const existing = await readTextIfExists(privatePath);
  let pair: Ed25519KeyPair;
  let privatePem: string;
  if (existing === undefined) {
    pair = generateEd25519(comment);
    privatePem = encodeOpenSshPrivateKey(pair);
    await writeFileAtomic(privatePath, privatePem, { mode: 0o600 });
  } else {
    try {
      pair = decodeOpenSshPrivateKey(existing);
    } catch (e) {
      throw new DevclusterError('SSH_KEY_INVALID', `${privatePath} is not a usable key: ${(e as Error).message}`, {
        advice:
          'devcluster does not replace an existing key, because the VM already depends on it. ' +
          'Restore the file from a backup, or delete the profile (devcluster delete) to start over with new keys.',
        details: { path: privatePath },
      });
    }
    privatePem = existing;
  }
  // The private key is the truth; the .pub file is rewritten when it is missing or stale.
  const publicLine = formatPublicKeyLine(pair.publicKey, pair.comment);
  if ((await readTextIfExists(publicPath))?.trim() !== publicLine) {
    await writeFileAtomic(publicPath, `${publicLine}\n`, { mode: 0o644 });
  }
  return { privatePath, publicPath, privatePem, publicLine, created: existing === undefined };
}

/** Comments live on one line in every format that carries them. */
function cleanComment(comment: string): string {
  // eslint-disable-next-line no-control-regex
  return comment.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

import { decodeOpenSshPrivateKey, ed25519PublicBlob, parsePublicKeyLine as parseOpenSshPublicKeyLine } from '../ssh/keys.ts';
import type { Ed25519KeyPair } from '../ssh/keys.ts';

/**
 * The checks, before a VM is created, that the keys going into the seed are
 * what cloud-init and sshd will accept: an authorized_keys line of a type sshd
 * knows whose blob agrees, and an unencrypted ed25519 private key whose public
 * half is the public key we pin on the host. The formats themselves are read
 * by src/ssh/keys.ts.
 */

export const AUTHORIZED_KEY_TYPES: readonly string[] = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
];

export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

export interface PublicKeyLine {
  type: string;
  blob: Buffer;
}

/**
 * Parses "type base64 [comment]" (src/ssh/keys.ts reads the format). Returns a
 * reason string when the line is not a public key cloud-init can install
 * (options prefixes are not supported).
 */
export function parsePublicKeyLine(line: string): PublicKeyLine | string {
  if (hasControlCharacter(line)) return 'it contains a line break or control character';
  const type = line.trim().split(/ +/)[0] ?? '';
  if (!AUTHORIZED_KEY_TYPES.includes(type)) {
    return `it does not start with a key type (${AUTHORIZED_KEY_TYPES.join(', ')})`;
  }
  try {
    const parsed = parseOpenSshPublicKeyLine(line);
    return { type: parsed.type, blob: parsed.blob };
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Normalizes an unencrypted OpenSSH ed25519 private key (LF line ends, one
 * trailing newline) and checks that its public half equals `publicBlob`.
 * Returns a reason string when it is not usable.
 */
export function checkEd25519PrivateKey(text: string, publicBlob: Buffer): { normalized: string } | string {
  const normalized = `${text.replace(/\r\n/g, '\n').trim()}\n`;
  // Nothing may stand around the key: the text goes into the seed as it is.
  if (!normalized.startsWith('-----BEGIN OPENSSH PRIVATE KEY-----\n') || !normalized.endsWith('\n-----END OPENSSH PRIVATE KEY-----\n')) {
    return 'it is not in OpenSSH format (-----BEGIN OPENSSH PRIVATE KEY----- ... -----END OPENSSH PRIVATE KEY-----)';
  }
  let pair: Ed25519KeyPair;
  try {
    pair = decodeOpenSshPrivateKey(text);
  } catch (e) {
    return (e as Error).message;
  }
  if (!ed25519PublicBlob(pair.publicKey).equals(publicBlob)) return 'it is not the private half of the given public key';
  return { normalized };
}

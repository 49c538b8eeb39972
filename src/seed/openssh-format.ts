/**
 * Just enough of the OpenSSH key formats to check, before a VM is created,
 * that the keys going into the seed are what cloud-init and sshd will accept:
 * an authorized_keys line whose type matches its blob, and an unencrypted
 * ed25519 private key whose public half is the public key we pin on the host.
 */

const PRIVATE_BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const PRIVATE_END = '-----END OPENSSH PRIVATE KEY-----';
const PRIVATE_MAGIC = 'openssh-key-v1\0';

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

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Reads SSH wire-format fields (RFC 4251 uint32 and length-prefixed string). */
class WireReader {
  private readonly buf: Buffer;
  private off = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  uint32(): number {
    if (this.off + 4 > this.buf.length) throw new RangeError('truncated');
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  string(): Buffer {
    const length = this.uint32();
    if (this.off + length > this.buf.length) throw new RangeError('truncated');
    const v = this.buf.subarray(this.off, this.off + length);
    this.off += length;
    return v;
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }
}

export interface PublicKeyLine {
  type: string;
  blob: Buffer;
}

/**
 * Parses "type base64 [comment]". Returns a reason string when the line is not
 * a public key cloud-init can install (options prefixes are not supported).
 */
export function parsePublicKeyLine(line: string): PublicKeyLine | string {
  if (hasControlCharacter(line)) return 'it contains a line break or control character';
  const [type = '', data = ''] = line.trim().split(/ +/);
  if (!AUTHORIZED_KEY_TYPES.includes(type)) {
    return `it does not start with a key type (${AUTHORIZED_KEY_TYPES.join(', ')})`;
  }
  if (!BASE64.test(data)) return 'its key data is not base64';
  const blob = Buffer.from(data, 'base64');
  try {
    const embedded = new WireReader(blob).string().toString('latin1');
    if (embedded !== type) return `its key data is a ${JSON.stringify(embedded)} key, not ${type}`;
  } catch {
    return 'its key data is truncated';
  }
  return { type, blob };
}

/**
 * Normalizes an unencrypted OpenSSH ed25519 private key (LF line ends, one
 * trailing newline) and checks that its public half equals `publicBlob`.
 * Returns a reason string when it is not usable.
 */
export function checkEd25519PrivateKey(text: string, publicBlob: Buffer): { normalized: string } | string {
  const lines = text.replace(/\r\n/g, '\n').trim().split('\n');
  if (lines[0] !== PRIVATE_BEGIN || lines[lines.length - 1] !== PRIVATE_END || lines.length < 3) {
    return `it is not in OpenSSH format (${PRIVATE_BEGIN} ... ${PRIVATE_END})`;
  }
  const body = lines.slice(1, -1);
  if (!body.every((l) => /^[A-Za-z0-9+/=]+$/.test(l))) return 'its body is not base64';
  const raw = Buffer.from(body.join(''), 'base64');
  if (raw.subarray(0, PRIVATE_MAGIC.length).toString('latin1') !== PRIVATE_MAGIC) return 'it is not an openssh-key-v1 key';
  try {
    const r = new WireReader(raw.subarray(PRIVATE_MAGIC.length));
    const cipher = r.string().toString('latin1');
    r.string(); // kdf name
    r.string(); // kdf options
    if (cipher !== 'none') return 'it is encrypted with a passphrase, which sshd cannot use unattended';
    if (r.uint32() !== 1) return 'it holds more than one key';
    const outerPublic = r.string();
    const secret = new WireReader(r.string());
    if (secret.uint32() !== secret.uint32()) return 'its check numbers differ (the key is corrupt)';
    const type = secret.string().toString('latin1');
    if (type !== 'ssh-ed25519') return `it is a ${JSON.stringify(type)} key, not ssh-ed25519`;
    const publicPart = secret.string();
    const privatePart = secret.string();
    if (publicPart.length !== 32 || privatePart.length !== 64) return 'its ed25519 key material has the wrong length';
    // The 64-byte private part is seed || public key.
    if (!privatePart.subarray(32).equals(publicPart)) return 'its private and public halves do not match';
    if (!outerPublic.equals(publicBlob) || !matchesBlob(publicBlob, publicPart)) {
      return 'it is not the private half of the given public key';
    }
  } catch {
    return 'it is truncated';
  }
  return { normalized: `${lines.join('\n')}\n` };
}

function matchesBlob(blob: Buffer, publicPart: Buffer): boolean {
  try {
    const r = new WireReader(blob);
    return r.string().toString('latin1') === 'ssh-ed25519' && r.string().equals(publicPart) && r.remaining === 0;
  } catch {
    return false;
  }
}

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../profile/atomic.ts';
import { parsePublicKeyLine } from './keys.ts';

/**
 * devcluster's own known_hosts file per profile (profiles/<p>/keys/known_hosts).
 * It is passed to the system ssh client as UserKnownHostsFile, so the user's
 * ~/.ssh/known_hosts is never read or written, and the pin is the host key
 * devcluster generated and injected: no trust-on-first-use.
 */

/** How OpenSSH names an endpoint in known_hosts: `host`, or `[host]:port` off port 22. */
export function knownHostsPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** One known_hosts line: pattern, key type, key data (the comment is dropped). */
export function knownHostsLine(host: string, port: number, publicKey: string): string {
  const key = parsePublicKeyLine(publicKey);
  return `${knownHostsPattern(host, port)} ${key.type} ${key.blob.toString('base64')}`;
}

/**
 * Pins the host key for host:port, replacing an older pin for the same
 * endpoint and keeping pins for other endpoints.
 */
export async function pinHostKey(path: string, host: string, port: number, publicKey: string): Promise<void> {
  const line = knownHostsLine(host, port, publicKey);
  const pattern = knownHostsPattern(host, port);
  const kept = (await readLines(path)).filter((l) => l.trim() !== '' && l.trim().split(/\s+/)[0] !== pattern);
  await writeFileAtomic(path, `${[...kept, line].join('\n')}\n`, { mode: 0o644 });
}

/** The pinned host public key line (`type base64`) for host:port, if any. */
export async function pinnedHostKey(path: string, host: string, port: number): Promise<string | undefined> {
  const pattern = knownHostsPattern(host, port);
  for (const l of await readLines(path)) {
    const [p, type, data] = l.trim().split(/\s+/);
    if (p === pattern && type !== undefined && data !== undefined) return `${type} ${data}`;
  }
  return undefined;
}

/** `SHA256:<unpadded base64>` of the key blob, as `ssh-keygen -l` and ssh print it. */
export function sshHostKeyFingerprint(publicKey: string | Uint8Array): string {
  const blob = typeof publicKey === 'string' ? parsePublicKeyLine(publicKey).blob : publicKey;
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

async function readLines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8')).split('\n');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
